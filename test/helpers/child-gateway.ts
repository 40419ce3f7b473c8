/**
 * A real `hestia serve` in a child process, for what only a separate process shows: signals,
 * exit codes, RSS. The OS picks the port (HESTIA_PORT=0); the URL is read from the
 * 'listening' log line. Log lines are parsed as they arrive and can be awaited.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { cliEnv, HESTIA_BIN } from './cli.ts';
import { childLogLines, type LogLines } from './log-lines.ts';

export interface ChildGateway extends LogLines {
  url: string;
  pid: number;
  child: ChildProcessWithoutNullStreams;
  /** Resolves with the exit code once the child has exited. */
  exited: Promise<number | null>;
  /** SIGKILL if still running (for `after` hooks). */
  kill(): void;
}

export async function spawnGateway(
  args: string[],
  env: Record<string, string | undefined> = {},
  nodeArgs: string[] = [],
): Promise<ChildGateway> {
  const child = spawn(process.execPath, [...nodeArgs, HESTIA_BIN, ...args], {
    env: cliEnv({ HESTIA_HOST: '127.0.0.1', HESTIA_PORT: '0', HESTIA_LOG_LEVEL: 'info', ...env }),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines = childLogLines(child, 'the gateway');
  const exited = lines.exited;
  // A bound for a loaded machine (a launch took over 15 s there), not an expectation.
  const listening = await lines.waitForLine((l) => l.event_type === 'listening', 60_000);
  return {
    lines: lines.lines,
    waitForLine: lines.waitForLine,
    url: String(listening.url),
    pid: child.pid as number,
    child,
    exited,
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
