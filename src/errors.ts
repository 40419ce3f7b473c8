/**
 * The one catalogue of errors Hestia itself answers with.
 *
 * Every response Hestia produces on its own (as opposed to an upstream's) is JSON in one
 * envelope: `{"error": "<human sentence>", "code": "HESTIA_…", "src": "hestia", ...details}`.
 * `src: "hestia"` lets a client tell a gateway error from an upstream one that passed through.
 * Codes are stable: tests and clients match on them, never on the sentence.
 */

export const ErrorCodes = {
  HESTIA_BAD_REQUEST: 400,
  HESTIA_VALIDATION: 400,
  HESTIA_UNAUTHORIZED: 401,
  HESTIA_FORBIDDEN: 403,
  HESTIA_UNKNOWN_SERVICE: 404,
  HESTIA_NOT_FOUND: 404,
  HESTIA_MISDIRECTED: 421,
  HESTIA_METHOD_NOT_ALLOWED: 405,
  HESTIA_CONFLICT: 409,
  HESTIA_PAYLOAD_TOO_LARGE: 413,
  HESTIA_TOO_MANY_REQUESTS: 429,
  HESTIA_INTERNAL: 500,
  HESTIA_UPSTREAM_UNREACHABLE: 502,
  HESTIA_UPSTREAM_ERROR: 502,
  HESTIA_RESPONSE_TOO_LARGE: 502,
  HESTIA_NO_HEALTHY_INSTANCE: 502,
  HESTIA_QUEUE_FULL: 503,
  HESTIA_START_FAILED: 503,
  HESTIA_NO_CAPACITY: 503,
  HESTIA_SHUTTING_DOWN: 503,
  HESTIA_START_TIMEOUT: 504,
  HESTIA_QUEUE_TIMEOUT: 504,
  HESTIA_UPSTREAM_TIMEOUT: 504,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export interface ErrorBody {
  error: string;
  code: ErrorCode;
  src: 'hestia';
  [detail: string]: unknown;
}

/** An error that knows how it is answered over HTTP. Details land in the JSON envelope. */
export class HestiaError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;
  /** Extra response headers, e.g. Retry-After. */
  readonly headers: Record<string, string>;

  constructor(
    code: ErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HestiaError';
    this.code = code;
    this.status = ErrorCodes[code];
    this.details = details;
    this.headers = headers;
  }

  toBody(): ErrorBody {
    return { error: this.message, code: this.code, src: 'hestia', ...this.details };
  }
}

export function errorBody(code: ErrorCode, message: string, details: Record<string, unknown> = {}): ErrorBody {
  return { error: message, code, src: 'hestia', ...details };
}

/** Minimal response surface shared by node:http's ServerResponse and tests. */
interface WritableResponse {
  headersSent: boolean;
  writableEnded: boolean;
  statusCode: number;
  setHeader(name: string, value: string | number): unknown;
  end(chunk?: string): unknown;
}

/**
 * Write a Hestia error on a raw node:http response. Used by the proxy, which does not go
 * through Fastify. A response that has already started cannot carry an error any more: the
 * caller must destroy the socket instead, so this returns false.
 */
export function sendError(res: WritableResponse, err: HestiaError): boolean {
  if (res.headersSent || res.writableEnded) return false;
  const payload = JSON.stringify(err.toBody());
  res.statusCode = err.status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(payload));
  res.setHeader('cache-control', 'no-store');
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.end(payload);
  return true;
}

export function unknownServiceError(id: string, known: readonly string[]): HestiaError {
  return new HestiaError('HESTIA_UNKNOWN_SERVICE', `unknown service '${id}'`, {
    serviceId: id,
    services: [...known],
  });
}
