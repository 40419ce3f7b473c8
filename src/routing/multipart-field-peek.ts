/**
 * Reading one field (the model endpoint's `model`) from a `multipart/form-data` body without
 * buffering the upload, and without changing what is forwarded.
 *
 * The body is parsed incrementally (busboy, the parser Fastify's multipart uses) chunk by chunk
 * as it arrives; parsing stops as soon as the field is complete. What was read so far (at most
 * `capBytes` plus the one chunk that crosses it) is kept and replayed, followed by the rest of
 * the client's stream, untouched and with its backpressure (json-body-peek.ts's replay). File
 * parts read before the field are parsed past, never kept (their bytes are only in the prefix).
 *
 * So a 50 MiB audio upload with `model` as its first field costs a few KiB of memory here; one
 * whose `model` comes after the file must fit the cap, or the field is reported `too_large`.
 */
import { Readable } from 'node:stream';
import busboy from 'busboy';
import { replayBody, toBuffer } from './json-body-peek.ts';

export type FieldPeek =
  | { readonly status: 'found'; readonly value: string }
  /** The body ended (or is not valid multipart) without the field. */
  | { readonly status: 'missing' }
  /** The cap was reached before the field was complete. */
  | { readonly status: 'too_large' };

export interface PeekedMultipart {
  readonly field: FieldPeek;
  /** The exact bytes to forward: a Buffer when fully read, else a replaying stream. */
  readonly forward: Buffer | Readable;
  readonly bufferedBytes: number;
}

/** Whether a Content-Type is multipart/form-data. */
export function isMultipartForm(contentType: string | undefined): boolean {
  return contentType !== undefined && /^\s*multipart\/form-data\s*;/i.test(contentType);
}

export async function readMultipartField(
  body: AsyncIterable<unknown>,
  contentType: string,
  name: string,
  capBytes: number,
): Promise<PeekedMultipart> {
  // A manual iterator (not for-await): leaving early must not destroy the client's stream.
  const it = body[Symbol.asyncIterator]();
  let field: FieldPeek | null = null;
  let bb: busboy.Busboy;
  try {
    bb = busboy({ headers: { 'content-type': contentType }, limits: { fieldSize: capBytes } });
  } catch {
    // No boundary: not a form anyone can read; forwarded as it is.
    return {
      field: { status: 'missing' },
      forward: Readable.from(replayBody([], it), { objectMode: false }),
      bufferedBytes: 0,
    };
  }
  bb.on('field', (n, value, info) => {
    if (n === name && field === null)
      field = info.valueTruncated ? { status: 'too_large' } : { status: 'found', value };
  });
  // File parts before the field: parsed past, their data dropped.
  // (A file part cut short when parsing stops reports an error nobody needs: ignored.)
  bb.on('file', (_n, file) => file.on('error', ignore).resume());
  bb.on('error', () => {
    field ??= { status: 'missing' };
  });
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    if (field !== null) break;
    const r = await it.next();
    if (r.done) {
      if (field === null) {
        bb.end();
        // busboy reports a field at the latest when the input ends (synchronously or next tick).
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      const all = Buffer.concat(chunks, size);
      return { field: field ?? { status: 'missing' }, forward: all, bufferedBytes: size };
    }
    const chunk = toBuffer(r.value);
    chunks.push(chunk);
    size += chunk.length;
    bb.write(chunk);
    if (field === null && size > capBytes) field = { status: 'too_large' };
  }
  bb.removeAllListeners('field');
  bb.on('error', ignore);
  bb.destroy();
  return {
    field,
    forward: Readable.from(replayBody(chunks, it), { objectMode: false }),
    bufferedBytes: size,
  };
}

function ignore(): void {}
