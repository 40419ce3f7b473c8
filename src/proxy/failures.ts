/**
 * What an upstream failure means for the exchange (SPEC §4): which failures may be retried,
 * and which Hestia error answers the client when nothing has been sent yet.
 */
import { HestiaError } from '../errors.ts';

/**
 * - `connect`: the request never reached the upstream (refused, DNS, unreachable, connect
 *   timeout). Always safe to retry.
 * - `reset`: the connection died before a response (reset, closed, broken pipe). Retried only
 *   when the request body has not started streaming (it cannot be replayed).
 * - `headers-timeout`, `body-timeout`: the per-service timeouts.
 * - `invalid-request`: undici refused to send what the client sent (a bad header or path).
 * - `protocol`: anything else, e.g. a malformed response.
 */
export type FailureKind = 'connect' | 'reset' | 'headers-timeout' | 'body-timeout' | 'invalid-request' | 'protocol';

const CONNECT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENETDOWN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

const RESET_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
]);

export function failureCode(err: unknown): string {
  const e = err as { code?: unknown; name?: unknown };
  if (typeof e?.code === 'string') return e.code;
  if (typeof e?.name === 'string') return e.name;
  return 'UNKNOWN';
}

export function classifyFailure(err: unknown): FailureKind {
  const code = failureCode(err);
  if (CONNECT_CODES.has(code)) return 'connect';
  if (RESET_CODES.has(code)) return 'reset';
  if (code === 'UND_ERR_HEADERS_TIMEOUT') return 'headers-timeout';
  if (code === 'UND_ERR_BODY_TIMEOUT') return 'body-timeout';
  if (code === 'UND_ERR_INVALID_ARG' || code === 'UND_ERR_NOT_SUPPORTED') return 'invalid-request';
  return 'protocol';
}

/** A failure that may be retried, given whether the request body has started streaming. */
export function isRetriable(kind: FailureKind, bodyStarted: boolean): boolean {
  return kind === 'connect' || (kind === 'reset' && !bodyStarted);
}

export interface FailureContext {
  serviceId: string;
  attempts: number;
  upstream: string;
}

/** The error answered to the client when a failure ends the exchange before any byte was sent. */
export function failureToError(kind: FailureKind, err: unknown, c: FailureContext): HestiaError {
  const cause = failureCode(err);
  const details = { serviceId: c.serviceId, attempts: c.attempts, upstream: c.upstream, cause };
  switch (kind) {
    case 'connect':
    case 'reset':
      return new HestiaError(
        'HESTIA_UPSTREAM_UNREACHABLE',
        `service '${c.serviceId}' could not be reached (${cause} after ${c.attempts} attempt${c.attempts === 1 ? '' : 's'})`,
        details,
      );
    case 'headers-timeout':
    case 'body-timeout':
      return new HestiaError('HESTIA_UPSTREAM_TIMEOUT', `service '${c.serviceId}' did not answer in time`, details);
    case 'invalid-request':
      return new HestiaError('HESTIA_BAD_REQUEST', 'the request cannot be forwarded', {
        serviceId: c.serviceId,
        cause,
      });
    default:
      return new HestiaError('HESTIA_UPSTREAM_ERROR', `service '${c.serviceId}' sent an invalid response`, details);
  }
}
