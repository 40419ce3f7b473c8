/**
 * What a CLI command touches of its process: output streams, stdin, environment, working
 * directory and signals. bin/hestia.mjs passes the real process (`processIo()`); tests call
 * `runCli(argv, io)` in-process with their own streams, environment and signal emitter, which
 * is what lets the CLI tests run without launching a node process per command.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { DEFAULT_CONFIG_PATH, type LoadResult, loadConfig } from '../config/loader.ts';

/** Enough of a writable stream for text output (and for pino, which only calls write). */
export interface CliOutput {
  write(chunk: string): unknown;
}

/** Enough of stdin: readable, and a terminal or not. */
export type CliInput = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };

/** Where `serve` hears SIGTERM, SIGINT and SIGHUP (the process, or an EventEmitter in tests). */
export interface SignalSource {
  on(signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP', listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP', listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface CliIo {
  stdout: CliOutput;
  stderr: CliOutput;
  stdin: CliInput;
  env: NodeJS.ProcessEnv;
  /** Relative paths (config file, database) are taken from here. */
  cwd: string;
  signals: SignalSource;
}

/** The real process. */
export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
    signals: process,
  };
}

/** Fill in what `io` leaves out from the real process. */
export function withDefaults(io: Partial<CliIo> = {}): CliIo {
  return { ...processIo(), ...io };
}

/** True when output goes to the process's own stdout (pino then gets its fast fd destination). */
export function isProcessStdout(io: CliIo): boolean {
  return io.stdout === process.stdout;
}

/** A path from the command line or the environment, relative to the command's cwd. */
export function pathIn(io: CliIo, path: string): string {
  if (io.cwd === process.cwd() || isAbsolute(path) || path === ':memory:') return path;
  return resolve(io.cwd, path);
}

/**
 * loadConfig, with relative paths (an explicit FILE, HESTIA_CONFIG_PATH, ./hestia_config.yml)
 * taken from `io.cwd`. For the real process that is exactly loadConfig.
 */
export function loadConfigIn(io: CliIo, path: string | undefined): LoadResult {
  if (io.cwd === process.cwd()) return loadConfig({ path, env: io.env });
  if (path !== undefined) return loadConfig({ path: pathIn(io, path), env: io.env });
  const fromEnv = io.env.HESTIA_CONFIG_PATH;
  if (fromEnv !== undefined) return loadConfig({ env: { ...io.env, HESTIA_CONFIG_PATH: pathIn(io, fromEnv) } });
  const local = resolve(io.cwd, DEFAULT_CONFIG_PATH);
  if (existsSync(local)) return loadConfig({ path: local, env: io.env });
  // No file in io.cwd: the built-in defaults, and the warning names io.cwd's path. (loadConfig
  // looks for ./hestia_config.yml in process.cwd(); in-process callers with another cwd must
  // not have one there: the test runner's cwd is the repository root, which has none.)
  const r = loadConfig({ env: io.env });
  return r.ok ? { ...r, warnings: r.warnings.map((w) => w.replace(resolve(DEFAULT_CONFIG_PATH), local)) } : r;
}
