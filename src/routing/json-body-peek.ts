/**
 * Reading a request's JSON body for a `json_body` strategy without changing what is forwarded.
 *
 * `readBodyForRouting(stream, cap)` reads at most `cap` bytes (plus the one chunk that crosses
 * it) and returns:
 * - `view`: what the strategy sees (`json` with the parsed value, `empty`, `not_json`, `too_large`);
 * - `forward`: the body to send upstream, byte for byte what the client sent — the buffered
 *   bytes themselves when the whole body fit, else a stream that replays the buffered prefix
 *   and then continues with the rest of the client's stream (with its backpressure). The body
 *   is never re-serialised, so key order, whitespace and number spelling reach the upstream intact.
 *
 * Memory: at most cap + one chunk per request, whatever the body size.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { BodyView } from './types.ts';

export interface RoutedBody {
  view: BodyView;
  /** The exact bytes to forward: a Buffer when fully read, else a replaying stream. */
  forward: Buffer | Readable;
  /** Bytes read before deciding (for logs/tests). */
  bufferedBytes: number;
}

/** Whether a request carries a body (node:http semantics: Content-Length > 0 or Transfer-Encoding). */
export function requestHasBody(headers: IncomingHttpHeaders): boolean {
  if (headers['transfer-encoding'] !== undefined) return true;
  const cl = headers['content-length'];
  return cl !== undefined && cl !== '0';
}

export async function readBodyForRouting(body: AsyncIterable<unknown>, capBytes: number): Promise<RoutedBody> {
  // A manual iterator (not for-await): leaving a for-await early would destroy the client's
  // stream, and the rest of it still has to be forwarded.
  const it = body[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) {
      const all = Buffer.concat(chunks, size);
      return { view: parseJsonBody(all), forward: all, bufferedBytes: size };
    }
    const chunk = toBuffer(r.value);
    chunks.push(chunk);
    size += chunk.length;
    if (size > capBytes) {
      return {
        view: { status: 'too_large' },
        forward: Readable.from(replayBody(chunks, it), { objectMode: false }),
        bufferedBytes: size,
      };
    }
  }
}

/** The buffered prefix, then the rest of the client's stream (pulled as it is read). */
export async function* replayBody(prefix: Buffer[], rest: AsyncIterator<unknown>): AsyncGenerator<Buffer> {
  for (const c of prefix) yield c;
  for (;;) {
    const r = await rest.next();
    if (r.done) return;
    yield toBuffer(r.value);
  }
}

export function toBuffer(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (typeof v === 'string') return Buffer.from(v);
  throw new TypeError(`request body chunk is not bytes: ${typeof v}`);
}

/** `json` when `bytes` is a JSON document (UTF-8, optional BOM), `empty` for no bytes, else `not_json`. */
export function parseJsonBody(bytes: Buffer): BodyView {
  if (bytes.length === 0) return { status: 'empty' };
  let text = bytes.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return { status: 'json', value: JSON.parse(text) as unknown };
  } catch {
    return { status: 'not_json' };
  }
}
