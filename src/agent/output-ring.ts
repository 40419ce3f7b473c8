/**
 * Bounded output per process: a ring of the last lines (default 1000 lines and 1 MiB, the
 * figures of SPEC §12), and a line splitter that never buffers more than `maxLine` bytes of
 * an unterminated line (a program printing 100 MB without a newline yields cut lines, not a
 * 100 MB string).
 */
import type { OutputLine } from '../remote/agent/protocol.ts';

export const RING_MAX_LINES = 1000;
export const RING_MAX_BYTES = 1024 * 1024;
export const MAX_LINE_BYTES = 16 * 1024;

export class OutputRing {
  private lines: OutputLine[] = [];
  private head = 0;
  private bytes = 0;
  /** Lines dropped to stay within bounds (shown as a count, never kept). */
  dropped = 0;

  constructor(
    private readonly maxLines = RING_MAX_LINES,
    private readonly maxBytes = RING_MAX_BYTES,
  ) {}

  push(line: OutputLine): void {
    this.lines.push(line);
    this.bytes += line.text.length;
    while (this.lines.length - this.head > this.maxLines || this.bytes > this.maxBytes) {
      const old = this.lines[this.head++];
      if (!old) break;
      this.bytes -= old.text.length;
      this.dropped++;
    }
    // Compact now and then so the array does not grow with the dropped prefix.
    if (this.head > 1024 && this.head * 2 > this.lines.length) {
      this.lines = this.lines.slice(this.head);
      this.head = 0;
    }
  }

  tail(n = this.maxLines): OutputLine[] {
    const live = this.lines.length - this.head;
    return this.lines.slice(this.head + Math.max(0, live - Math.max(0, n)));
  }

  get size(): number {
    return this.lines.length - this.head;
  }

  get byteSize(): number {
    return this.bytes;
  }
}

/** Split a byte stream into lines of at most `maxLine` bytes; `\r\n` and `\n` end a line. */
export class LineSplitter {
  private parts: Buffer[] = [];
  private pending = 0;

  constructor(
    private readonly onLine: (text: string) => void,
    private readonly maxLine = MAX_LINE_BYTES,
  ) {}

  write(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      const end = nl < 0 ? chunk.length : nl;
      // Take what fits in the current line.
      let from = start;
      while (end - from > 0) {
        const room = this.maxLine - this.pending;
        const take = Math.min(room, end - from);
        this.parts.push(chunk.subarray(from, from + take));
        this.pending += take;
        from += take;
        if (this.pending >= this.maxLine) this.flush(true);
      }
      if (nl < 0) return;
      this.flush(false);
      start = nl + 1;
    }
  }

  end(): void {
    if (this.pending > 0) this.flush(false);
  }

  private flush(cut: boolean): void {
    let text = Buffer.concat(this.parts, this.pending).toString('utf8');
    this.parts = [];
    this.pending = 0;
    if (text.endsWith('\r')) text = text.slice(0, -1);
    this.onLine(cut ? `${text}…` : text);
  }
}
