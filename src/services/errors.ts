/**
 * The lifecycle's errors, built in one place so their envelopes (SPEC §2, §5) stay uniform.
 */
import { HestiaError } from '../errors.ts';

/** One failed attempt of a start, as reported to clients and stored in the event. */
export interface StartFailure {
  machine: string;
  /** 1-based attempt on that machine; 0 when the machine itself could not take the start. */
  attempt: number;
  reason: string;
  timedOut: boolean;
  /**
   * Where it failed: `start` (launch or readiness), or the machine before any attempt —
   * `unreachable`, `wake_failed`, `no_capacity` (MachineUnavailableError, placement.ts), `prepare` (other);
   * `dependency`: a service in its `depends_on` could not be started (before any machine).
   */
  stage?: 'start' | 'unreachable' | 'wake_failed' | 'no_capacity' | 'prepare' | 'dependency';
}

/** How long a client should wait after a failed start before trying again. */
export function startRetryAfterMs(retryDelayMs: number): number {
  return Math.max(1_000, retryDelayMs);
}

/**
 * Every waiter of a start that failed gets this. HESTIA_NO_CAPACITY (503) when no machine had
 * room (every failure is `no_capacity`), HESTIA_START_TIMEOUT (504) when the last attempt ran
 * out of start_timeout_ms, HESTIA_START_FAILED (503) otherwise; all carry
 * `{serviceId, attempts, retry_after_ms, reason, machines, failures}` and `Retry-After`.
 * `machines` lists every machine tried, in order; `failures` says why each one failed.
 */
export function startFailedError(serviceId: string, failures: StartFailure[], retryAfterMs: number): HestiaError {
  const last = failures.at(-1);
  const attempts = failures.length;
  const reason = last?.reason ?? 'unknown failure';
  const machines = [...new Set(failures.map((f) => f.machine))];
  const noCapacity = failures.length > 0 && failures.every((f) => f.stage === 'no_capacity');
  const code = noCapacity ? 'HESTIA_NO_CAPACITY' : last?.timedOut ? 'HESTIA_START_TIMEOUT' : 'HESTIA_START_FAILED';
  const summary =
    machines.length > 1
      ? failures.map((f) => `${f.machine}${f.attempt > 0 ? ` #${f.attempt}` : ''}: ${f.reason}`).join('; ')
      : reason;
  const head = noCapacity
    ? `no machine has room for service '${serviceId}' (tried ${machines.join(', ')})`
    : `service '${serviceId}' failed to start after ${attempts} attempt${attempts === 1 ? '' : 's'} (on ${machines.join(', ')})`;
  return new HestiaError(
    code,
    `${head}: ${summary}`,
    { serviceId, attempts, retry_after_ms: retryAfterMs, reason, machines, failures },
    { 'Retry-After': String(Math.ceil(retryAfterMs / 1000)) },
  );
}

/**
 * A start triggered by a request during the backoff after a failed start (SPEC §12): refused
 * with the last error and `Retry-After` (the rest of the backoff). `POST …/start` is not refused.
 */
export function startBackoffError(
  serviceId: string,
  lastError: { message: string; code: string; at: string; attempts: number } | null,
  remainingMs: number,
): HestiaError {
  const seconds = Math.max(1, Math.ceil(remainingMs / 1000));
  return new HestiaError(
    'HESTIA_START_FAILED',
    `service '${serviceId}' failed to start recently; not starting it again for ${seconds} s` +
      `${lastError ? ` (last error: ${lastError.message})` : ''}; POST /v1/services/${serviceId}/start starts it now`,
    { serviceId, retry_after_ms: remainingMs, backoff: true, lastError },
    { 'Retry-After': String(seconds) },
  );
}

export function startCancelledError(serviceId: string, why: string): HestiaError {
  return new HestiaError('HESTIA_START_FAILED', `start of service '${serviceId}' was cancelled: ${why}`, {
    serviceId,
    attempts: 0,
    retry_after_ms: 1_000,
    reason: `cancelled: ${why}`,
  });
}

export function shuttingDownError(serviceId: string | null): HestiaError {
  return new HestiaError('HESTIA_SHUTTING_DOWN', 'the gateway is shutting down', serviceId ? { serviceId } : {}, {
    'Retry-After': '5',
  });
}

/** Abort reason of a start attempt that ran out of start_timeout_ms. */
export class StartTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`not ready within ${timeoutMs} ms (start_timeout_ms)`);
    this.name = 'StartTimeoutError';
  }
}
