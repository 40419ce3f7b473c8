/**
 * A small Server-Sent Events client for tests, on node:http: parses frames as they arrive
 * (`id`, `event`, `data`, `retry`, comments) and lets a test await the next frame.
 */
import { type IncomingMessage, request } from 'node:http';

export interface SseFrame {
  id: string | null;
  event: string | null;
  data: string;
}

export interface SseStream {
  readonly res: IncomingMessage;
  /** Every frame with data so far. */
  readonly frames: SseFrame[];
  /** Comment lines seen (without the colon). */
  readonly comments: string[];
  /** Resolves when the server ends the stream. */
  readonly ended: Promise<void>;
  /** The next frame not yet consumed by `next` (waits, bounded). */
  next(timeoutMs?: number): Promise<SseFrame>;
  /** Frames' data parsed as JSON, consumed until `pred` matches one (which is returned). */
  until(pred: (ev: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  close(): void;
}

export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const frames: SseFrame[] = [];
      const comments: string[] = [];
      let consumed = 0;
      let wake: (() => void) | null = null;
      let buf = '';
      let cur: SseFrame = { id: null, event: null, data: '' };
      let hasData = false;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (;;) {
          const nl = buf.indexOf('\n');
          if (nl < 0) break;
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line === '') {
            if (hasData) frames.push(cur);
            cur = { id: null, event: null, data: '' };
            hasData = false;
            continue;
          }
          if (line.startsWith(':')) {
            comments.push(line.slice(1).trim());
            continue;
          }
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'data') {
            cur.data = hasData ? `${cur.data}\n${value}` : value;
            hasData = true;
          } else if (field === 'id') cur.id = value;
          else if (field === 'event') cur.event = value;
        }
        wake?.();
      });
      const ended = new Promise<void>((r) => {
        res.on('end', r);
        res.on('close', r);
      });
      const stream: SseStream = {
        res,
        frames,
        comments,
        ended,
        async next(timeoutMs = 15_000) {
          const deadline = Date.now() + timeoutMs;
          while (consumed >= frames.length) {
            const left = deadline - Date.now();
            if (left <= 0) throw new Error(`no SSE frame within ${timeoutMs} ms (got ${frames.length})`);
            await new Promise<void>((r) => {
              const t = setTimeout(r, left);
              wake = () => {
                clearTimeout(t);
                wake = null;
                r();
              };
            });
          }
          return frames[consumed++]!;
        },
        async until(pred, timeoutMs = 15_000) {
          const deadline = Date.now() + timeoutMs;
          for (;;) {
            const f = await stream.next(Math.max(1, deadline - Date.now()));
            const ev = JSON.parse(f.data) as Record<string, unknown>;
            if (pred(ev)) return ev;
          }
        },
        close() {
          req.destroy();
        },
      };
      resolve(stream);
    });
    req.on('error', reject);
    req.end();
  });
}
