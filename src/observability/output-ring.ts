/**
 * A service's own output (SPEC §12): what its launched process, container, remote command or
 * job printed, kept in a bounded ring per service and readable through
 * `GET /v1/services/{id}/logs` (tail) and `/logs/stream` (live).
 *
 * Launchers write raw bytes per stream (`OutputSink`, handed to them in the launch context); the
 * ring splits them into lines and keeps memory bounded whatever arrives:
 * - at most `maxLines` lines and `maxBytes` bytes of text (the oldest lines go first);
 * - a line longer than `maxLineBytes` is cut there (marked with how much was dropped), and the
 *   rest of it is counted, not kept, until its newline arrives;
 * - bytes are decoded as UTF-8 (invalid sequences become U+FFFD) and control characters other
 *   than tab are shown as U+FFFD, so binary output cannot corrupt a JSON or SSE answer;
 * - `mask` replaces secrets (the config's) before a line is kept, logged or sent.
 * Each kept line is also handed to `onLine` (the gateway log, tagged with the service id) and to
 * the live subscribers.
 */

export type OutputStream = 'stdout' | 'stderr' | 'log';

export interface OutputLine {
  /** ISO time the line was complete. */
  time: string;
  stream: OutputStream;
  text: string;
}

/** What a launcher writes its service's output to. Never throws, never blocks. */
export interface OutputSink {
  /** A chunk of raw output (any bytes) from one stream. */
  write(stream: OutputStream, chunk: Buffer | string): void;
  /** The stream ended: a last line without a newline is kept. */
  end(stream: OutputStream): void;
}

/** What readers (the logs API, the waiting page, the dashboard) may do with a ring. */
export interface OutputReader {
  tail(n?: number): OutputLine[];
  subscribe(fn: (line: OutputLine) => void): () => void;
}

export interface OutputRingOptions {
  maxLines?: number;
  maxBytes?: number;
  maxLineBytes?: number;
  mask?: (text: string) => string;
  onLine?: (line: OutputLine) => void;
}

export const DEFAULT_OUTPUT_LINES = 1_000;
export const DEFAULT_OUTPUT_BYTES = 1024 * 1024;
/** Longest line kept; the rest of a longer line is dropped (and counted). */
export const DEFAULT_MAX_LINE_BYTES = 16 * 1024;

const NEWLINE = 0x0a;
// Control characters other than tab (and a trailing CR, removed before) become U+FFFD.
// biome-ignore lint/suspicious/noControlCharactersInRegex: that is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

/** A line being assembled: the bytes kept so far and how many were dropped past the cut. */
interface Partial {
  parts: Buffer[];
  kept: number;
  dropped: number;
}

export class OutputRing implements OutputSink, OutputReader {
  private readonly lines: OutputLine[] = [];
  /** Index of the oldest line in `lines` (dropped lines are skipped, compacted now and then). */
  private head = 0;
  private bytes = 0;
  private readonly partial = new Map<OutputStream, Partial>();
  private readonly subscribers = new Set<(line: OutputLine) => void>();
  private maxLines = DEFAULT_OUTPUT_LINES;
  private maxBytes = DEFAULT_OUTPUT_BYTES;
  private maxLineBytes = DEFAULT_MAX_LINE_BYTES;

  constructor(private readonly opts: OutputRingOptions = {}) {
    this.setLimits(opts.maxLines, opts.maxBytes);
  }

  /**
   * New bounds (a config reload changed `output_lines` / `output_bytes`): a smaller ring drops its
   * oldest lines at once; a larger one keeps every line and grows from now on.
   */
  resize(limits: { maxLines?: number; maxBytes?: number }): void {
    this.setLimits(limits.maxLines, limits.maxBytes);
    this.trim();
  }

  private setLimits(maxLines: number | undefined, maxBytes: number | undefined): void {
    this.maxLines = Math.max(1, maxLines ?? DEFAULT_OUTPUT_LINES);
    this.maxBytes = Math.max(1, maxBytes ?? DEFAULT_OUTPUT_BYTES);
    this.maxLineBytes = Math.max(1, Math.min(this.opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES, this.maxBytes));
  }

  write(stream: OutputStream, chunk: Buffer | string): void {
    let buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (;;) {
      const nl = buf.indexOf(NEWLINE);
      if (nl < 0) {
        if (buf.length > 0) this.append(stream, buf);
        return;
      }
      this.append(stream, buf.subarray(0, nl));
      this.finishLine(stream);
      buf = buf.subarray(nl + 1);
    }
  }

  end(stream: OutputStream): void {
    const p = this.partial.get(stream);
    if (p && (p.kept > 0 || p.dropped > 0)) this.finishLine(stream);
    this.partial.delete(stream);
  }

  /** The last `n` lines (all kept lines when n is larger), oldest first. */
  tail(n: number = this.maxLines): OutputLine[] {
    const count = Math.max(0, Math.min(n, this.lines.length - this.head));
    return this.lines.slice(this.lines.length - count);
  }

  /** Bytes of text kept (for tests of the bound). */
  get size(): { lines: number; bytes: number } {
    return { lines: this.lines.length - this.head, bytes: this.bytes };
  }

  /** Every new line, until the returned function is called. */
  subscribe(fn: (line: OutputLine) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }

  private append(stream: OutputStream, bytes: Buffer): void {
    let p = this.partial.get(stream);
    if (!p) {
      p = { parts: [], kept: 0, dropped: 0 };
      this.partial.set(stream, p);
    }
    const room = this.maxLineBytes - p.kept;
    if (room <= 0) {
      p.dropped += bytes.length;
      return;
    }
    const part = bytes.length <= room ? bytes : bytes.subarray(0, room);
    // Copy: the chunk's buffer may be reused by its stream, and a slice would pin all of it.
    p.parts.push(Buffer.from(part));
    p.kept += part.length;
    p.dropped += bytes.length - part.length;
  }

  private finishLine(stream: OutputStream): void {
    const p = this.partial.get(stream);
    this.partial.delete(stream);
    let text = p ? Buffer.concat(p.parts).toString('utf8') : '';
    if (text.endsWith('\r')) text = text.slice(0, -1);
    text = text.replace(CONTROL, '\ufffd');
    if (this.opts.mask) text = this.opts.mask(text);
    if (p && p.dropped > 0) text += ` … [line cut: ${p.dropped} more bytes]`;
    this.keep({ time: new Date().toISOString(), stream, text });
  }

  private keep(line: OutputLine): void {
    const size = Buffer.byteLength(line.text);
    this.lines.push(line);
    this.bytes += size;
    this.trim();
    this.opts.onLine?.(line);
    for (const fn of this.subscribers) fn(line);
  }

  /** Drop the oldest lines until the bounds hold (the newest line always stays). */
  private trim(): void {
    while (
      this.lines.length - this.head > this.maxLines ||
      (this.bytes > this.maxBytes && this.lines.length - this.head > 1)
    ) {
      const old = this.lines[this.head]!;
      this.bytes -= Buffer.byteLength(old.text);
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.lines.length) {
      this.lines.splice(0, this.head);
      this.head = 0;
    }
  }
}
