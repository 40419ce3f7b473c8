/**
 * JSON log lines as they arrive (from a child's stdout or an in-process logger's sink), parsed,
 * kept, and awaitable: `waitForLine` resolves on the line event itself, no polling.
 */
import type { ChildProcessWithoutNullStreams } from 'node:child_process';

export type LogLine = Record<string, unknown>;

export interface LogLines {
  lines: LogLine[];
  /** Resolves with the first line (past or future) that matches; rejects after timeoutMs or at end(). */
  waitForLine(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

export function logLines(): LogLines & {
  /** Feed raw output (any chunking). */
  sink: { write(chunk: string | Uint8Array): boolean };
  /** No more lines will come: pending waits reject with `why`. */
  end(why: string): void;
} {
  const lines: LogLine[] = [];
  const waiters = new Set<{
    pred: (l: LogLine) => boolean;
    resolve: (l: LogLine) => void;
    reject: (e: Error) => void;
  }>();
  let buf = '';
  let ended: string | null = null;
  const sink = {
    write(chunk: string | Uint8Array) {
      buf += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        let line: LogLine;
        try {
          line = JSON.parse(text) as LogLine;
        } catch {
          line = { msg: text, unparsed: true };
        }
        lines.push(line);
        for (const w of [...waiters]) if (w.pred(line)) w.resolve(line);
      }
      return true;
    },
  };
  const waitForLine = (pred: (l: LogLine) => boolean, timeoutMs = 15_000) => {
    const hit = lines.find(pred);
    if (hit) return Promise.resolve(hit);
    if (ended !== null) return Promise.reject(new Error(`no matching log line: ${ended}`));
    return new Promise<LogLine>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(
          new Error(`no matching log line within ${timeoutMs} ms; last lines: ${JSON.stringify(lines.slice(-3))}`),
        );
      }, timeoutMs);
      const w = {
        pred,
        resolve: (l: LogLine) => {
          waiters.delete(w);
          clearTimeout(timer);
          resolve(l);
        },
        reject: (e: Error) => {
          waiters.delete(w);
          clearTimeout(timer);
          reject(e);
        },
      };
      waiters.add(w);
    });
  };
  return {
    lines,
    waitForLine,
    sink,
    end(why) {
      ended = why;
      for (const w of [...waiters]) w.reject(new Error(`no matching log line: ${why}`));
    },
  };
}

/**
 * The JSON log lines of a child process's stdout, and its exit code. When it exits, waiting for
 * a line fails at once with `what` and the end of its stderr.
 */
export function childLogLines(
  child: ChildProcessWithoutNullStreams,
  what: string,
): ReturnType<typeof logLines> & { exited: Promise<number | null> } {
  const lines = logLines();
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => lines.sink.write(d));
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      lines.end(`${what} exited (${code}); stderr: ${stderr.slice(-500)}`);
      resolve(code);
    }),
  );
  return { ...lines, exited };
}
