/**
 * One HTTP readiness probe and the readiness wait built on it (SPEC §5): poll `health_url`
 * every `health_interval_ms` until it answers 2xx; without a health_url, wait `warmup_ms`.
 * Both stop as soon as the given signal aborts (start timeout, child exit, shutdown).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

/** Longest a single probe may take; the loop's own deadline is the start timeout. */
export const PROBE_TIMEOUT_MS = 2_000;

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
  for (;;) {
    const r = await probeOnce(healthUrl, PROBE_TIMEOUT_MS, signal);
    if (r.ok) return;
    opts.onProbe?.(r);
    await sleep(opts.intervalMs, undefined, { signal });
  }
}
