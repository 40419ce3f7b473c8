/**
 * One templated HTTP call with a deadline: the http launcher's start/stop and the machines'
 * http wake/sleep actions both send it. Header values and query strings never reach a message
 * (they may carry tokens); callers word their own errors from the fields of HttpCallError.
 */
import { request } from '../http-client.ts';
import { expandTemplate, type TemplateVars } from './templates.ts';

export interface HttpCallSpec {
  /** URL template ({host}, {port}, {machine}, {service}). */
  url: string;
  method: string;
  headers: Record<string, string>;
  /** A string (templated), or a JSON value whose strings are templated; none when undefined/null. */
  body?: unknown;
  timeoutMs: number;
}

export interface HttpCallResult {
  /** `METHOD scheme://host/path` (query hidden): safe for messages and logs. */
  where: string;
  url: string;
  status: number;
  text: string;
}

/** The request never got an answer: refused, reset, timed out or aborted by the caller. */
export class HttpCallError extends Error {
  constructor(
    readonly where: string,
    readonly url: string,
    readonly why: string,
    readonly code: string | undefined,
    readonly timedOut: boolean,
    readonly aborted: boolean,
  ) {
    super(`${where} ${aborted ? 'aborted' : `failed: ${why}`}`);
    this.name = 'HttpCallError';
  }
}

/** Expand templates in every string inside a JSON-like value. */
export function expandDeep(value: unknown, vars: TemplateVars): unknown {
  if (typeof value === 'string') return expandTemplate(value, vars);
  if (Array.isArray(value)) return value.map((v) => expandDeep(v, vars));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandDeep(v, vars)]));
  return value;
}

/** The URL without query string or userinfo, safe for messages (queries may carry tokens). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '<invalid url>';
  }
}

/** Send the call; resolves with any status (callers decide what counts as success). */
export async function sendHttpCall(
  spec: HttpCallSpec,
  vars: TemplateVars,
  signal?: AbortSignal,
): Promise<HttpCallResult> {
  const url = expandTemplate(spec.url, vars);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.headers)) headers[k.toLowerCase()] = expandTemplate(v, vars);
  let body: string | null = null;
  if (spec.body !== undefined && spec.body !== null) {
    if (typeof spec.body === 'string') body = expandTemplate(spec.body, vars);
    else {
      body = JSON.stringify(expandDeep(spec.body, vars));
      headers['content-type'] ??= 'application/json';
    }
  }
  const method = spec.method.toUpperCase();
  const where = `${method} ${safeUrl(url)}`;
  const timeout = AbortSignal.timeout(spec.timeoutMs);
  try {
    const r = await request(url, {
      method: method as 'POST',
      headers,
      body,
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      headersTimeout: spec.timeoutMs,
      bodyTimeout: spec.timeoutMs,
    });
    return { where, url, status: r.statusCode, text: await r.body.text() };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = timeout.aborted ? `no answer within ${spec.timeoutMs} ms` : `${e.code ?? ''} ${e.message}`.trim();
    throw new HttpCallError(where, url, why, e.code, timeout.aborted, signal?.aborted === true);
  }
}
