/**
 * A bounded FIFO of requests waiting for one service (SPEC §5): they wait for a start to finish
 * or, under `max_concurrency`, for a slot. It knows nothing of states or launchers: the
 * runtime decides *when* to grant, the queue only keeps order, bounds, deadlines and aborts.
 *
 * Contract:
 * - `enqueue` rejects at once with HESTIA_QUEUE_FULL (503 + `Retry-After`) when `capacity`
 *   requests are already waiting; the caller is never queued in that case.
 * - Each waiter has its own deadline (`timeoutMs` from its arrival): when it passes, the waiter
 *   leaves the queue and is rejected with HESTIA_QUEUE_TIMEOUT (504).
 * - A waiter whose AbortSignal fires leaves the queue at once and is rejected with the
 *   signal's reason. Nothing else happens: a start it triggered goes on for the others.
 * - `grantNext` resolves the oldest waiter (arrival order) with a value made for it.
 * - Every settled waiter has its timer cleared and its abort listener removed.
 */
import { HestiaError } from '../errors.ts';

export interface WaiterInfo {
  /** `now()` when the waiter arrived. */
  readonly enqueuedAt: number;
  /** Milliseconds from arrival to the grant. */
  readonly waitedMs: number;
  /** Whether the waiter arrived while the service was not hot (it waited for a start). */
  readonly coldStart: boolean;
}

export interface WaitQueueOptions {
  serviceId: string;
  /** Most waiters held at once (`queue_size`). */
  capacity: number;
  /** Per-waiter deadline (`request_timeout_seconds` × 1000). */
  timeoutMs: number;
  /** Seconds a rejected client should wait before retrying (the `Retry-After` header). */
  retryAfterSeconds: () => number;
  /** Told about each deadline that passed (for the `queue_timeout` event). */
  onTimeout?: (info: WaiterInfo) => void;
  /**
   * What the service was doing when a deadline passed, for the 504's message and details
   * (`still starting; health_url last answered: status 503`), so the error explains itself.
   */
  describe?: () => { note: string; details: Record<string, unknown> };
  now?: () => number;
}

export interface EnqueueOptions {
  signal?: AbortSignal | undefined;
  coldStart: boolean;
}

interface Waiter<T> {
  enqueuedAt: number;
  coldStart: boolean;
  resolve(value: T): void;
  reject(err: unknown): void;
  timer: NodeJS.Timeout | null;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | null;
}

export class WaitQueue<T> {
  // An array is fine here: queue_size bounds it (default 100), and removal from the middle
  // (abort, deadline) is rare compared with the grants from the head.
  private readonly waiters: Waiter<T>[] = [];
  private readonly now: () => number;

  constructor(private readonly opts: WaitQueueOptions) {
    this.now = opts.now ?? Date.now;
  }

  get length(): number {
    return this.waiters.length;
  }

  /** Update the limits (config reload). Waiters already queued keep their deadlines. */
  setLimits(capacity: number, timeoutMs: number): void {
    this.opts.capacity = capacity;
    this.opts.timeoutMs = timeoutMs;
  }

  /** The error a request gets when the queue is full (also used before enqueueing). */
  fullError(): HestiaError {
    const secs = Math.max(1, Math.ceil(this.opts.retryAfterSeconds()));
    return new HestiaError(
      'HESTIA_QUEUE_FULL',
      `service '${this.opts.serviceId}' has ${this.waiters.length} requests waiting (queue_size ${this.opts.capacity}); retry later`,
      { serviceId: this.opts.serviceId, queueSize: this.opts.capacity, retry_after_ms: secs * 1000 },
      { 'Retry-After': String(secs) },
    );
  }

  isFull(): boolean {
    return this.waiters.length >= this.opts.capacity;
  }

  enqueue(opts: EnqueueOptions): Promise<T> {
    if (this.isFull()) return Promise.reject(this.fullError());
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const w: Waiter<T> = {
        enqueuedAt: this.now(),
        coldStart: opts.coldStart,
        resolve,
        reject,
        timer: null,
        signal,
        onAbort: null,
      };
      if (this.opts.timeoutMs > 0) {
        const timeoutMs = this.opts.timeoutMs;
        w.timer = setTimeout(() => {
          if (!this.remove(w)) return;
          const info = this.info(w);
          this.opts.onTimeout?.(info);
          const ctx = this.opts.describe?.();
          reject(
            new HestiaError(
              'HESTIA_QUEUE_TIMEOUT',
              `service '${this.opts.serviceId}' was not ready within ${timeoutMs / 1000} s (request_timeout_seconds)${ctx ? `; ${ctx.note}` : ''}`,
              {
                serviceId: this.opts.serviceId,
                waitedMs: info.waitedMs,
                request_timeout_seconds: timeoutMs / 1000,
                ...ctx?.details,
              },
            ),
          );
        }, timeoutMs);
      }
      if (signal) {
        w.onAbort = () => {
          if (this.remove(w)) reject(signal.reason);
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.waiters.push(w);
    });
  }

  /**
   * Grant the oldest waiter: `make` builds its value (a lease) synchronously, then the waiter
   * is resolved with it. Returns false when nobody is waiting.
   */
  grantNext(make: (info: WaiterInfo) => T): boolean {
    const w = this.waiters.shift();
    if (!w) return false;
    this.cleanup(w);
    w.resolve(make(this.info(w)));
    return true;
  }

  /** Reject every waiter with `err` (a failed start, shutdown). Returns how many there were. */
  rejectAll(err: unknown): number {
    const all = this.waiters.splice(0);
    for (const w of all) {
      this.cleanup(w);
      w.reject(err);
    }
    return all.length;
  }

  private info(w: Waiter<T>): WaiterInfo {
    return { enqueuedAt: w.enqueuedAt, waitedMs: Math.max(0, this.now() - w.enqueuedAt), coldStart: w.coldStart };
  }

  private remove(w: Waiter<T>): boolean {
    const i = this.waiters.indexOf(w);
    if (i < 0) return false;
    this.waiters.splice(i, 1);
    this.cleanup(w);
    return true;
  }

  private cleanup(w: Waiter<T>): void {
    if (w.timer) clearTimeout(w.timer);
    w.timer = null;
    if (w.signal && w.onAbort) w.signal.removeEventListener('abort', w.onAbort);
    w.onAbort = null;
  }
}
