/**
 * The readiness wait (SPEC §5), built on one HTTP probe (remote/http-probe.ts): poll `health_url`
 * until it answers 2xx; without a health_url, wait `warmup_ms`. Both stop as soon as the given
 * signal aborts (start timeout, child exit, shutdown).
 *
 * ## Poll interval (adaptive)
 * A fixed `health_interval_ms` makes a request that waits for a cold start pay up to one whole
 * interval after the service became ready. Instead, the delay before the next probe is
 * POLL_FRACTION (5 %) of the time the wait has lasted so far, at least FIRST_POLL_MS and at most
 * `health_interval_ms`. So readiness is noticed at most 5 % of the start's duration late (10 ms
 * for a start under 200 ms, 25 ms for a 500 ms one), never more than one interval late, and the
 * extra probes grow only with the logarithm of the start's length: a 5 s start costs ~85 probes
 * instead of 20, and past `health_interval_ms` / 5 % (5 s at the default 250 ms) polling is the
 * configured interval. (A ×1.5 backoff per probe, the first design, reached the interval after
 * ~8 probes, so a 500 ms start was noticed up to 120 ms late with the default interval.) Still
 * one timer per wait, never a busy loop; each probe is one small GET.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type ProbeResult, probeOnce } from '../remote/http-probe.ts';

/** Longest a single probe may take; the loop's own deadline is the start timeout. */
export const PROBE_TIMEOUT_MS = 2_000;
/** Shortest delay between two probes of a readiness wait (see the module comment). */
export const FIRST_POLL_MS = 10;
/** The delay before the next probe, as a share of the time the wait has lasted so far. */
export const POLL_FRACTION = 0.05;

/**
 * The delay before the next probe when the readiness wait has lasted `elapsedMs`: POLL_FRACTION
 * of it, at least FIRST_POLL_MS, and never above `intervalMs` (so a configured interval below
 * FIRST_POLL_MS is honoured from the start).
 */
export function pollDelay(intervalMs: number, elapsedMs: number): number {
  return Math.min(intervalMs, Math.max(FIRST_POLL_MS, Math.ceil(elapsedMs * POLL_FRACTION)));
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
  const began = performance.now();
  for (;;) {
    const r = await probeOnce(healthUrl, PROBE_TIMEOUT_MS, signal);
    if (r.ok) return;
    opts.onProbe?.(r);
    await sleep(pollDelay(opts.intervalMs, performance.now() - began), undefined, { signal });
  }
}
