/**
 * Bounded text for error messages: remote stderr, HTTP error bodies and API messages end up
 * in LaunchError messages, logs and `service_start_failed` events, so they are trimmed and
 * capped (a runaway stderr must not become a megabyte log line).
 */

/** Trim and cap `text` at `max` characters, marking the cut with an ellipsis. */
export function excerpt(text: string, max = 500): string {
  const t = text.trim();
  return t.length <= max ? t : `${t.slice(0, max)}…`;
}

/**
 * Collects a stream's chunks up to `limit` bytes and counts the rest, so a chatty command
 * cannot grow memory without bound.
 */
export class BoundedBuffer {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  /** Bytes seen beyond the limit (dropped). */
  dropped = 0;
  constructor(private readonly limit = 64 * 1024) {}

  push(chunk: Buffer | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const room = this.limit - this.kept;
    if (room <= 0) {
      this.dropped += buf.length;
      return;
    }
    const part = buf.length <= room ? buf : buf.subarray(0, room);
    this.chunks.push(part);
    this.kept += part.length;
    this.dropped += buf.length - part.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}
