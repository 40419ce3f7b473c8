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
  HESTIA_UNKNOWN_MODEL: 404,
  HESTIA_METHOD_NOT_ALLOWED: 405,
  HESTIA_REQUEST_TIMEOUT: 408,
  HESTIA_CONFLICT: 409,
  HESTIA_PAYLOAD_TOO_LARGE: 413,
  HESTIA_URI_TOO_LONG: 414,
  HESTIA_MISDIRECTED: 421,
  HESTIA_TOO_MANY_REQUESTS: 429,
  HESTIA_HEADERS_TOO_LARGE: 431,
  HESTIA_INTERNAL: 500,
  HESTIA_UPSTREAM_UNREACHABLE: 502,
  HESTIA_UPSTREAM_ERROR: 502,
  HESTIA_RESPONSE_TOO_LARGE: 502,
  HESTIA_NO_HEALTHY_INSTANCE: 502,
  HESTIA_QUEUE_FULL: 503,
  HESTIA_BUFFER_FULL: 503,
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
export function sendError(
  res: WritableResponse,
  err: HestiaError,
  /** The body's shape: Hestia's envelope by default; the model endpoints pass `openAiErrorBody`. */
  shape: (err: HestiaError) => unknown = toEnvelope,
): boolean {
  if (res.headersSent || res.writableEnded) return false;
  const payload = JSON.stringify(shape(err));
  res.statusCode = err.status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(payload));
  res.setHeader('cache-control', 'no-store');
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.end(payload);
  return true;
}

function toEnvelope(err: HestiaError): ErrorBody {
  return err.toBody();
}

/** OpenAI's error `type` for a status, so the `openai` client libraries pick the right exception. */
function openAiErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status < 500) return 'invalid_request_error';
  return 'api_error';
}

/**
 * The error body of the OpenAI-style model endpoints (`/v1/chat/completions`, `/v1/models`, …):
 * OpenAI's `{error: {message, type, code}}`, which the `openai` and Anthropic client libraries
 * turn into a readable exception, plus Hestia's own fields beside it (`code: "HESTIA_…"`,
 * `src: "hestia"`, the details). `error.code` is `model_not_found` for an unknown model (OpenAI's
 * own code), else the Hestia code in lower case.
 */
export function openAiErrorBody(err: HestiaError): Record<string, unknown> {
  return {
    ...err.details,
    error: {
      message: err.message,
      type: openAiErrorType(err.status),
      code: err.code === 'HESTIA_UNKNOWN_MODEL' ? 'model_not_found' : err.code.toLowerCase(),
    },
    code: err.code,
    src: 'hestia',
  };
}

export function unknownModelError(model: string, known: readonly string[]): HestiaError {
  return new HestiaError('HESTIA_UNKNOWN_MODEL', `the model '${model}' does not exist (no service lists it)`, {
    model,
    models: [...known],
  });
}

export function unknownServiceError(id: string, known: readonly string[]): HestiaError {
  return new HestiaError('HESTIA_UNKNOWN_SERVICE', `unknown service '${id}'`, {
    serviceId: id,
    services: [...known],
  });
}
