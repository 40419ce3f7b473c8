/**
 * The upstream header and body timeouts of proxied requests (`upstream_headers_timeout_ms`,
 * `upstream_body_timeout_ms`), kept by one sweeping timer for all requests instead of a timer
 * object per request.
 *
 * ## Why not undici's `headersTimeout` / `bodyTimeout`
 * undici keeps one timer per connection and re-creates it whenever the delay changes. A keep-alive
 * connection alternates between the request timeouts and its idle timeout, so every proxied
 * request allocated a new undici "fast timer" (any timeout over 1 s); a cleared fast timer stays
 * in undici's list until its next 0.5 s tick, so it outlives two scavenges and is promoted to
 * V8's old space as garbage. At 15k requests/s that was ~1.3 MB/s of old-space garbage: more
 * major GCs, more time with the marking write barrier on, and a higher RSS. Measured in one
 * interleaved run (small body, gateway pinned to one core): with undici's timers off, CPU per
 * request fell 4 % at c=32 and 11 % at c=256; with these deadlines instead, the gateway's peak RSS
 * at c=32/256 went from ~170 to ~140 MiB (12 interleaved rounds; CPU per request within noise of
 * no timeouts at all).
 *
 * ## How
 * A request is tracked from the moment undici writes it (`onConnect`, so time spent waiting in
 * the pool for a connection does not count, as before) with a deadline; every body chunk moves
 * the deadline, and while our own backpressure pauses the upstream no body timeout runs (both as
 * undici did). One timer sweeps the tracked requests every `timeout / 4` (10 ms .. 1 s), so a
 * timeout fires at most a quarter late (undici's own fast timers had 1 s resolution), and it
 * runs only while a request is tracked: an idle gateway has no timer.
 */

/** A request with a running deadline (Forwarding). */
export interface Timed {
  /** performance.now() value after which the request has timed out; 0 = not tracked. */
  deadline: number;
  /** The deadline passed: abort the request. Called once; the request is no longer tracked. */
  onDeadline(): void;
  /** Links of the tracked list (owned by Deadlines). */
  prevTimed: Timed | null;
  nextTimed: Timed | null;
}

const MIN_TICK_MS = 10;
const MAX_TICK_MS = 1_000;

function sweepNow(d: Deadlines): void {
  d.sweep();
}

/**
 * The tracked requests are an intrusive doubly-linked list (the links live on the request), as
 * in nginx's and libuv's timers: tracking, moving and untracking allocate nothing. (A Set was
 * measured first: its hash table, rebuilt as entries come and go at 10k+ requests/s, raised the
 * gateway's peak RSS under load by 20–40 MiB in an A/B run.)
 */
export class Deadlines {
  private head: Timed | null = null;
  private count = 0;
  private timer: NodeJS.Timeout | null = null;
  private tickMs = MAX_TICK_MS;

  /** Start (or move) `t`'s deadline to `timeoutMs` from now. */
  track(t: Timed, timeoutMs: number): void {
    if (t.deadline === 0) {
      t.prevTimed = null;
      t.nextTimed = this.head;
      if (this.head !== null) this.head.prevTimed = t;
      this.head = t;
      this.count++;
    }
    t.deadline = performance.now() + timeoutMs;
    const tick = Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.floor(timeoutMs / 4)));
    if (this.timer === null || tick < this.tickMs) {
      this.tickMs = tick;
      if (this.timer !== null) clearInterval(this.timer);
      this.timer = setInterval(sweepNow, tick, this);
      this.timer.unref();
    }
  }

  /** Stop `t`'s deadline (answered, failed, paused, or ended). */
  untrack(t: Timed): void {
    if (t.deadline === 0) return;
    t.deadline = 0;
    const { prevTimed: prev, nextTimed: next } = t;
    if (prev !== null) prev.nextTimed = next;
    else this.head = next;
    if (next !== null) next.prevTimed = prev;
    t.prevTimed = null;
    t.nextTimed = null;
    this.count--;
  }

  /** How many requests have a running deadline. */
  get size(): number {
    return this.count;
  }

  /** Whether the sweeping timer exists (only while a request is tracked). */
  get running(): boolean {
    return this.timer !== null;
  }

  sweep(): void {
    const now = performance.now();
    let t = this.head;
    while (t !== null) {
      // An onDeadline() may end other requests (untracking them: deadline 0, links cleared); such
      // an entry is skipped, and the walk resumes at the next sweep if its links were cut.
      const next = t.nextTimed;
      if (t.deadline !== 0 && t.deadline <= now) {
        this.untrack(t);
        t.onDeadline();
      }
      t = next;
    }
    if (this.count === 0) this.stop();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.tickMs = MAX_TICK_MS;
  }
}

/** The errors a timed-out request is aborted with: undici's codes, so failures.ts classifies them alike. */
export function upstreamTimeoutError(kind: 'headers' | 'body', ms: number): Error {
  const err = new Error(
    kind === 'headers'
      ? `no response headers from the upstream within ${ms} ms`
      : `no response body data from the upstream for ${ms} ms`,
  );
  return Object.assign(err, { code: kind === 'headers' ? 'UND_ERR_HEADERS_TIMEOUT' : 'UND_ERR_BODY_TIMEOUT' });
}
