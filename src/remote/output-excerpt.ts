/**
 * Bounded text for error messages: remote stderr, HTTP error bodies and API messages end up
 * in LaunchError messages, logs and `service_start_failed` events, so they are trimmed and
 * capped (a runaway stderr must not become a megabyte log line).
 *
 * A cut keeps what a reader needs: the first line that states an error (`Error: listen
 * EADDRINUSE …`, `OSError: …`, `panic: …`) and the last lines (the exit summary), with stack
 * frames (`    at emitErrorNT (node:net:…)`) dropped; never an arbitrary window that starts
 * halfway through a stack trace.
 *
 * URLs in the text have their user info and token-like query values masked (config/mask.ts):
 * these excerpts reach `lastError`, events and API answers.
 */
import { maskText } from '../config/mask.ts';

/** Stack frames and source-echo lines: noise in a one-paragraph failure reason. */
const FRAME = /^\s+at\s|^\s*\^+\s*$|^\s*\.\.\. \d+ more\b/;
/** A line that states an error: `Error: …`, `TypeError: …`, `OSError: …`, `error: …`, `panic: …`, `Traceback …`. */
const ERROR_STATEMENT = /^\s*(?:[\w.$]*(?:Error|Exception)\b|error\b|fatal\b|panic\b|Traceback\b)/i;
/** Weaker evidence, used when no line states an error: an errno code or an error word. */
const ERRORISH = /\bE[A-Z]{3,}\b|\b(?:error|exception|fatal|failed|cannot|denied|refused|not found)\b/i;

export interface SummaryOptions {
  /** Most characters in the result (default 1000). */
  maxChars?: number;
  /** How many of the last meaningful lines are kept (default 6). */
  tailLines?: number;
}

/**
 * The meaningful part of a program's error output: the first error line, a `…` marking any
 * gap, and the last `tailLines` lines; stack frames and blank lines dropped; at most
 * `maxChars` characters (a single over-long line is cut at its end).
 */
export function summarizeOutput(lines: readonly string[], opts: SummaryOptions = {}): string {
  const maxChars = opts.maxChars ?? 1000;
  const tailLines = Math.max(1, opts.tailLines ?? 6);
  const meaningful = lines.map((l) => l.trimEnd()).filter((l) => l.trim() !== '' && !FRAME.test(l));
  if (meaningful.length === 0) return '';
  let first = meaningful.findIndex((l) => ERROR_STATEMENT.test(l));
  if (first < 0) first = meaningful.findIndex((l) => ERRORISH.test(l));
  const tailStart = Math.max(0, meaningful.length - tailLines);
  const out: string[] = [];
  if (first >= 0 && first < tailStart) {
    out.push(meaningful[first] as string);
    if (first + 1 < tailStart) out.push('…');
  } else if (tailStart > 0) out.push('…');
  out.push(...meaningful.slice(tailStart));
  return fit(out.map(maskText), maxChars);
}

/** Join `lines` within `max` characters: the first line keeps up to half, the tail the rest. */
function fit(lines: string[], max: number): string {
  const joined = lines.join('\n');
  if (joined.length <= max) return joined;
  if (lines.length === 1) return `${joined.slice(0, max - 1)}…`;
  const head = lines[0] as string;
  const keptHead = head.length <= max / 2 ? head : `${head.slice(0, Math.floor(max / 2) - 1)}…`;
  const room = Math.max(0, max - keptHead.length - 3);
  const rest = lines.slice(1).join('\n');
  return `${keptHead}\n…${rest.slice(rest.length - room)}`;
}

/**
 * Trim and cap `text` at `max` characters. Over the cap, multi-line text is summarised
 * (first error line + last lines, see summarizeOutput); a single line is cut with an ellipsis.
 */
export function excerpt(text: string, max = 500): string {
  const t = maskText(text.trim());
  if (t.length <= max) return t;
  const lines = t.split(/\r?\n/);
  return lines.length > 1 ? summarizeOutput(lines, { maxChars: max }) : `${t.slice(0, max)}…`;
}

/**
 * Keeps the first `headLines` and the last `tailLines` lines of a stream, counting the ones in
 * between, so a failure reason can quote the first error line of a long stack trace.
 */
export class HeadTailLines {
  private readonly head: string[] = [];
  private readonly tail: string[] = [];
  /** Lines seen between head and tail (dropped). */
  omitted = 0;
  constructor(
    private readonly headLines = 20,
    private readonly tailLines = 20,
  ) {}

  push(line: string): void {
    if (this.head.length < this.headLines) {
      this.head.push(line);
      return;
    }
    this.tail.push(line);
    if (this.tail.length > this.tailLines) {
      this.tail.shift();
      this.omitted++;
    }
  }

  /** summarizeOutput over what was kept, with a line marking the dropped ones. */
  summary(opts: SummaryOptions = {}): string {
    const gap = this.omitted > 0 ? [`… ${this.omitted} more line${this.omitted === 1 ? '' : 's'} …`] : [];
    return summarizeOutput([...this.head, ...gap, ...this.tail], opts);
  }
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
