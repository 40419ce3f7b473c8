/**
 * A real `hestia serve` in a child process, for what only a separate process shows: signals,
 * exit codes, RSS. The OS picks the port (HESTIA_PORT=0); the URL is read from the
 * 'listening' log line. Log lines are parsed as they arrive and can be awaited.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { HESTIA_BIN } from './cli.ts';

export interface ChildGateway {
  url: string;
  pid: number;
  child: ChildProcessWithoutNullStreams;
  lines: Array<Record<string, unknown>>;
  /** Resolves with the first log line (past or future) that matches; rejects after timeoutMs. */
  waitForLine(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves with the exit code once the child has exited. */
  exited: Promise<number | null>;
  /** SIGKILL if still running (for `after` hooks). */
  kill(): void;
}

export async function spawnGateway(
  args: string[],
  env: Record<string, string | undefined> = {},
): Promise<ChildGateway> {
  const child = spawn(process.execPath, [HESTIA_BIN, ...args], {
    env: { ...process.env, HESTIA_HOST: '127.0.0.1', HESTIA_PORT: '0', HESTIA_LOG_LEVEL: 'info', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters = new Set<{
    pred: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }>();
  let buf = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      const text = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        line = { msg: text, unparsed: true };
      }
      lines.push(line);
      for (const w of [...waiters])
        if (w.pred(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const waitForLine = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 15_000) => {
    const hit = lines.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const w = {
        pred,
        resolve: (l: Record<string, unknown>) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`no matching log line within ${timeoutMs} ms; stderr: ${stderr.slice(-500)}`));
      }, timeoutMs);
      waiters.add(w);
      void exited.then(() => {
        if (!waiters.has(w)) return;
        waiters.delete(w);
        clearTimeout(timer);
        reject(new Error(`gateway exited before the expected log line; stderr: ${stderr.slice(-500)}`));
      });
    });
  };

  const listening = await waitForLine((l) => l.event_type === 'listening');
  return {
    url: String(listening.url),
    pid: child.pid as number,
    child,
    lines,
    waitForLine,
    exited,
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
