/**
 * The `hestia` command in tests.
 *
 * - `runCli(args, {env, cwd, stdin})`: the command in-process (src/cli/main.ts `runCli`), with
 *   its own captured stdout/stderr, environment (process.env overlaid with `env`; `undefined`
 *   removes a variable, as for a child process), cwd and stdin (a pipe holding `stdin`, empty by
 *   default). No node process is launched, so a CLI test costs milliseconds, not ~0.7 s.
 * - `startCliGateway(args, env)`: `hestia serve` in-process; signals are sent with `signal()`
 *   to the command's own emitter (never to the test process).
 * - `runBin(args, opts)`: the real bin/hestia.mjs as a child process, for the few smoke tests
 *   that must show what only a separate process shows (exit codes, signals, a real pipe).
 */
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { runCli as runCliInProcess } from '../../src/cli/main.ts';
import { type LogLines, logLines } from './log-lines.ts';

export const HESTIA_BIN = fileURLToPath(new URL('../../bin/hestia.mjs', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** What the command reads on stdin (a pipe, not a terminal). Default: nothing. */
  stdin?: string;
  /** Run as an installed command (no sources beside it): XDG database default. Default: false. */
  installed?: boolean;
}

/** process.env overlaid with `env`; a key set to undefined is removed. */
export function cliEnv(env: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}

function collector(): { write(chunk: string | Uint8Array): boolean; text: string } {
  return {
    text: '',
    write(chunk) {
      this.text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      return true;
    },
  };
}

/** Run `hestia ...args` in-process to completion. */
export async function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  const stdout = collector();
  const stderr = collector();
  const code = await runCliInProcess(args, {
    stdout,
    stderr,
    stdin: Readable.from(opts.stdin === undefined ? [] : [Buffer.from(opts.stdin)]),
    env: cliEnv(opts.env),
    cwd: opts.cwd ?? process.cwd(),
    signals: new EventEmitter(),
    installed: opts.installed ?? false,
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** `hestia serve` running in-process (on 127.0.0.1, a port the OS picks). */
export interface CliGateway extends LogLines {
  url: string;
  /** Deliver a signal to the command (SIGHUP reloads, SIGTERM/SIGINT stop it). */
  signal(sig: 'SIGHUP' | 'SIGTERM' | 'SIGINT'): void;
  /** The command's exit code, once it returned. */
  exited: Promise<number>;
  stderr(): string;
  /** SIGTERM if still running (for `after` hooks). */
  stop(): Promise<number>;
}

export async function startCliGateway(
  args: string[],
  env: Record<string, string | undefined> = {},
  opts: { cwd?: string; installed?: boolean } = {},
): Promise<CliGateway> {
  const signals = new EventEmitter();
  const stderr = collector();
  const lines = logLines();
  let done = false;
  const exited = runCliInProcess(args, {
    stdout: lines.sink,
    stderr,
    stdin: Readable.from([]),
    env: cliEnv({ HESTIA_HOST: '127.0.0.1', HESTIA_PORT: '0', HESTIA_LOG_LEVEL: 'info', ...env }),
    signals,
    installed: opts.installed ?? false,
    ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
  }).finally(() => {
    done = true;
    lines.end(`command returned; stderr: ${stderr.text.slice(-500)}`);
  });
  const listening = await lines.waitForLine((l) => l.event_type === 'listening');
  return {
    ...lines,
    url: String(listening.url),
    signal: (sig) => signals.emit(sig, sig),
    exited,
    stderr: () => stderr.text,
    stop: () => {
      if (!done) signals.emit('SIGTERM', 'SIGTERM');
      return exited;
    },
  };
}

/** Run the real bin/hestia.mjs to completion (bounded by timeoutMs, then SIGKILL). */
export function runBin(args: string[], opts: CliOptions & { timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [HESTIA_BIN, ...args], {
      cwd: opts.cwd,
      env: cliEnv(opts.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}
