/**
 * One HTTP health probe: a service's readiness (services/probe.ts), the status endpoint's
 * probe-and-adopt, and a machine's `wait_url` after a wake (machines/power.ts).
 */
import { request } from '../http-client.ts';

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
