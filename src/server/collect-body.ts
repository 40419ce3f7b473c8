/**
 * Collect a response body into memory with a hard cap (the dispatcher's
 * `dispatcher.max_response_bytes`). Reading stops as soon as the cap is crossed and the
 * source is destroyed, so an endless or huge upstream response cannot grow the gateway.
 */

export type Collected = { ok: true; bytes: Buffer } | { ok: false; receivedBytes: number };

export interface Destroyable {
  destroy(error?: Error): unknown;
}

/**
 * Read `source` to its end, or until more than `capBytes` arrived (0 = no cap).
 * On overflow the source is destroyed and `{ok: false}` returned; a source error rejects.
 */
export async function collectCapped(
  source: AsyncIterable<unknown> & Destroyable,
  capBytes: number,
): Promise<Collected> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of source) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array | string);
    size += buf.length;
    if (capBytes > 0 && size > capBytes) {
      // Leaving for-await destroys a Readable already; explicit for other iterables with destroy().
      source.destroy();
      return { ok: false, receivedBytes: size };
    }
    chunks.push(buf);
  }
  return { ok: true, bytes: Buffer.concat(chunks, size) };
}
