/**
 * One HTTP readiness probe and the readiness wait built on it (SPEC §5): poll `health_url`
 * until it answers 2xx; without a health_url, wait `warmup_ms`. Both stop as soon as the given
 * signal aborts (start timeout, child exit, shutdown).
 *
 * ## Poll interval (adaptive)
 * A fixed `health_interval_ms` makes a request that waits for a cold start pay up to one whole
 * interval after the service became ready. Polling starts at FIRST_POLL_MS right after the
 * launch and grows by POLL_BACKOFF per failed probe up to `health_interval_ms`, so a service
 * that is ready quickly is noticed within a few ms, and a long start (a model loading for
 * minutes) costs only a handful of extra probes in its first second. Still one timer per wait,
 * never a busy loop.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

/** Longest a single probe may take; the loop's own deadline is the start timeout. */
export const PROBE_TIMEOUT_MS = 2_000;
/** Delay before the second probe of a readiness wait (see the module comment). */
export const FIRST_POLL_MS = 10;
/** Growth of the delay after each failed probe, up to `health_interval_ms`. */
export const POLL_BACKOFF = 1.5;

/**
 * The delays between the probes of one readiness wait: FIRST_POLL_MS, then ×POLL_BACKOFF per
 * failed probe, capped at `intervalMs` (never above it, so a configured interval below
 * FIRST_POLL_MS is honoured from the start).
 */
export function pollDelays(intervalMs: number): () => number {
  let next = Math.min(FIRST_POLL_MS, intervalMs);
  return () => {
    const d = next;
    next = Math.min(intervalMs, Math.ceil(next * POLL_BACKOFF));
    return d;
  };
}

export interface ProbeResult {
  ok: boolean;
  /** What was seen: `status 503`, `connect ECONNREFUSED 127.0.0.1:9001`. */
  detail: string;
}

/**
 * GET `url` once: ok on a 2xx within `timeoutMs`, not ok on anything else (refused, timeout,
 * non-2xx). Never throws unless `signal` aborted.
 */
export async function probeOnce(url: string, timeoutMs: number, signal?: AbortSignal): Promise<ProbeResult> {
  const timeout = AbortSignal.timeout(Math.max(1, timeoutMs));
  const combined = signal ? AbortSignal.any([signal, timeout]) : timeout;
  try {
    const res = await request(url, {
      method: 'GET',
      signal: combined,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      headers: { 'user-agent': 'hestia-health' },
      // No keep-alive: a pooled idle socket would outlive the upstream it was opened to (a
      // restarted service answers the next probe with a reset) and can hold up its shutdown.
      reset: true,
    });
    // Drain the body so the connection goes back to the pool.
    await res.body.dump().catch(() => {});
    return { ok: res.statusCode >= 200 && res.statusCode < 300, detail: `status ${res.statusCode}` };
  } catch (err) {
    signal?.throwIfAborted();
    const e = err as Error & { code?: string };
    return { ok: false, detail: timeout.aborted ? `no answer within ${timeoutMs} ms` : e.message || String(e.code) };
  }
}

export interface ReadinessOptions {
  healthUrl: string | null;
  /** Upper bound of the poll delay (`health_interval_ms`); the first polls come sooner. */
  intervalMs: number;
  warmupMs: number;
  signal: AbortSignal;
  /** Told about every failed probe (the last one explains a start timeout). */
  onProbe?: (result: ProbeResult) => void;
}

/** Resolves when the service is ready; rejects with the signal's reason when it aborts. */
export async function waitUntilReady(opts: ReadinessOptions): Promise<void> {
  const { healthUrl, signal } = opts;
  if (!healthUrl) {
    if (opts.warmupMs > 0) await sleep(opts.warmupMs, undefined, { signal });
    signal.throwIfAborted();
    return;
  }
  const nextDelay = pollDelays(opts.intervalMs);
  for (;;) {
    const r = await probeOnce(healthUrl, PROBE_TIMEOUT_MS, signal);
    if (r.ok) return;
    opts.onProbe?.(r);
    await sleep(nextDelay(), undefined, { signal });
  }
}
