/**
 * A managed process's output goes to files in the agent's state dir, not to pipes
 * (`<state-dir>/output/<id>.stdout|.stderr`, mode 0600, opened O_APPEND for the child), and
 * the agent reads them as they grow. Why files:
 *
 * - **re-adoption keeps the output**: a pipe dies with the agent that read it (the child then
 *   writes into a pipe nobody reads, or gets SIGPIPE); a file outlives it. The next agent opens
 *   the same files and reads on from where the last one stopped (the offsets are saved at a clean
 *   shutdown; after a crash it starts within the last MAX_CATCH_UP bytes), so even what was printed
 *   while no agent ran is captured.
 * - **the agent's memory is bounded by what it decides to read**, not by how fast the child
 *   writes: it reads READ_BUDGET bytes per turn in CHUNK pieces, and not at all while its event
 *   subscribers are congested (`paused()`); the child never blocks on a full pipe.
 *
 * The disk is bounded too: once the reader reached the end of a file past TRUNCATE_AT bytes,
 * the file is truncated to 0 (the child's O_APPEND writes continue at the new end); a file that
 * grows past MAX_FILE faster than it is read is truncated at once, and what was skipped is said in
 * one output line (`[hestia agent: N bytes of output skipped]`). At the instant of a truncation a
 * write that lands between the last read and the truncate is lost (bounded by one write).
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, rmSync, watch } from 'node:fs';

export const CHUNK = 16 * 1024;
/** Bytes read per turn of the event loop before yielding (other streams, sockets, timers). */
export const READ_BUDGET = 256 * 1024;
/** At the end of a file this large, it is truncated. */
export const TRUNCATE_AT = 1024 * 1024;
/** A file larger than this is cut at once, skipping its unread part. */
export const MAX_FILE = 16 * 1024 * 1024;
/** At most this much unread output is caught up (re-adoption after a crash, a final drain). */
export const MAX_CATCH_UP = 1024 * 1024;
/** A safety poll besides the file watch (a missed inotify event costs at most this). */
const POLL_MS = 1_000;

/** Open (create) an output file for a child to write to: O_APPEND, 0600. Returns the fd. */
export function openForChild(path: string): number {
  return openSync(path, 'a', 0o600);
}

export interface OutputFileOptions {
  path: string;
  /** Where to start reading (a saved offset; clamped to the file's size). */
  offset?: number;
  onData(chunk: Buffer): void;
  /** Output skipped to stay within bounds (bytes). */
  onSkipped(bytes: number): void;
  /** True while the reader should wait (subscribers congested). */
  paused(): boolean;
  /** After the final read of `finish` (an unterminated last line can be flushed). */
  onFinished?(): void;
}

export class OutputFile {
  private readonly fd: number;
  private pos: number;
  private readonly buf = Buffer.allocUnsafe(CHUNK);
  private watcher: ReturnType<typeof watch> | null = null;
  private poll: NodeJS.Timeout | null = null;
  private scheduled: NodeJS.Immediate | null = null;
  private closed = false;
  /** Set by `finish`: read to the end, then close and settle. */
  private finishing: (() => void) | null = null;

  constructor(private readonly opts: OutputFileOptions) {
    this.fd = openSync(opts.path, 'r+');
    const size = fstatSync(this.fd).size;
    let start = Math.min(opts.offset ?? 0, size);
    if (size - start > MAX_CATCH_UP) {
      opts.onSkipped(size - MAX_CATCH_UP - start);
      start = size - MAX_CATCH_UP;
    }
    this.pos = start;
    try {
      this.watcher = watch(opts.path, { persistent: false }, () => this.kick());
      this.watcher.on('error', () => {});
    } catch {
      this.watcher = null;
    }
    this.poll = setInterval(() => this.kick(), POLL_MS);
    this.poll.unref();
    this.kick();
  }

  get path(): string {
    return this.opts.path;
  }

  /** Where the reader is (saved in the state file at a clean shutdown). */
  get offset(): number {
    return this.pos;
  }

  /** Read soon (the file grew, or the subscribers drained). */
  kick(): void {
    if (this.closed || this.scheduled) return;
    this.scheduled = setImmediate(() => {
      this.scheduled = null;
      this.pump();
    });
  }

  private pump(): void {
    if (this.closed) return;
    // Waiting for the subscribers: their drain (or the poll) kicks again.
    if (this.opts.paused()) return;
    const size = fstatSync(this.fd).size;
    if (size < this.pos) this.pos = 0; // truncated by someone else
    if (this.finishing === null && size > MAX_FILE) {
      this.opts.onSkipped(size - this.pos);
      this.truncate();
      this.kick();
      return;
    }
    let budget = READ_BUDGET;
    while (budget > 0) {
      // Checked per chunk: a chunk of short lines is several times its size as events.
      if (this.opts.paused()) return;
      const n = readSync(this.fd, this.buf, 0, Math.min(CHUNK, budget), this.pos);
      if (n === 0) break;
      this.pos += n;
      budget -= n;
      // A copy: the reader's buffer is reused for the next read.
      this.opts.onData(Buffer.from(this.buf.subarray(0, n)));
    }
    if (budget === 0) {
      this.kick(); // more may be there: next turn
      return;
    }
    const done = this.finishing;
    if (done !== null) {
      this.finishing = null;
      this.close();
      this.opts.onFinished?.();
      done();
      return;
    }
    if (this.pos >= TRUNCATE_AT) this.truncate();
  }

  private truncate(): void {
    ftruncateSync(this.fd, 0);
    this.pos = 0;
  }

  /**
   * The process ended: read what is left (at most its last MAX_CATCH_UP bytes, paced like the
   * rest), then stop. Settles once everything kept was handed to onData (or the reader closed).
   */
  finish(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.finishing !== null) return new Promise((resolve) => this.onceFinished(resolve));
    const size = fstatSync(this.fd).size;
    if (size - this.pos > MAX_CATCH_UP) {
      this.opts.onSkipped(size - MAX_CATCH_UP - this.pos);
      this.pos = size - MAX_CATCH_UP;
    }
    const p = new Promise<void>((resolve) => {
      this.finishing = resolve;
    });
    this.kick();
    return p;
  }

  private onceFinished(fn: () => void): void {
    const prev = this.finishing;
    this.finishing = () => {
      prev?.();
      fn();
    };
  }

  /** Stop reading (the file stays: the next agent reads on from `offset`). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.scheduled) clearImmediate(this.scheduled);
    closeSync(this.fd);
    // A pending finish settles (the agent is closing): nothing more will be read here.
    const done = this.finishing;
    this.finishing = null;
    done?.();
  }

  /** Stop reading and delete the file (its process is finished and read). */
  remove(): void {
    this.close();
    rmSync(this.opts.path, { force: true });
  }
}
