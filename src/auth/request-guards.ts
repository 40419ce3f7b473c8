/**
 * Small HTTP-level helpers shared by the proxy's auth hook and the control plane: the proxy gate,
 * refusing a WebSocket upgrade, "did this come over https", and the same-origin (CSRF) check.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { HestiaError } from '../errors.ts';
import { type HeaderBag, readPresentedKey } from './api-keys.ts';
import type { Authenticator } from './authenticate.ts';
import { readCookieValues, SESSION_COOKIE, type Session } from './session.ts';

/**
 * The proxy's auth hook (`/services/*` requests and upgrades). Call it only when
 * `auth.enabled` is true (the proxy's hot path checks that one boolean first).
 * Returns the error to answer with, or null after stripping the gateway's credentials from
 * `req.headers` (mutated in place), so the request can be forwarded.
 */
export function gateProxyRequest(auth: Authenticator, req: IncomingMessage, serviceId?: string): HestiaError | null {
  const outcome = auth.authenticate(req.headers, req.socket.remoteAddress, req.url ?? '/', serviceId);
  if (!outcome.ok) return outcome.error;
  auth.stripGatewayCredentials(req.headers, outcome);
  return null;
}

/**
 * The auth hook of a host or port door (SPEC §10): an API key as on the path door; else a live
 * dashboard session cookie (a person logged in at that origin's `/.hestia/login`), refused
 * (CSRF) for a state-changing request or a WebSocket upgrade another origin started. The
 * session cookie is stripped before forwarding, like keys. Call only when auth is enabled.
 */
export function gateOriginRequest(
  auth: Authenticator,
  req: IncomingMessage,
  serviceId: string | undefined,
  trustProxy: boolean,
): HestiaError | null {
  const headers = req.headers;
  const session = readPresentedKey(headers).kind === 'none' ? liveSession(auth, headers) : undefined;
  if (session === undefined) return gateProxyRequest(auth, req, serviceId);
  const crossOrigin =
    headers.upgrade !== undefined || !isSafeMethod(req.method ?? 'GET')
      ? !isSameOrigin(headers, trustProxy) && (headers.origin !== undefined || !isSafeMethod(req.method ?? 'GET'))
      : false;
  if (crossOrigin) {
    const client = auth.clientAddress(headers, req.socket.remoteAddress);
    return auth.deny('csrf', client, req.url ?? '/', { method: req.method }).error;
  }
  auth.stripGatewayCredentials(headers, { ok: true, keyName: session.username, via: 'session', services: null });
  return null;
}

/** The live dashboard session a request's cookie names, if any. */
export function liveSession(auth: Authenticator, headers: HeaderBag): Session | undefined {
  for (const id of readCookieValues(headers.cookie, SESSION_COOKIE)) {
    const s = auth.sessions.get(id);
    if (s !== undefined) return s;
  }
  return undefined;
}

/** A key or a live session is presented (a door's browser without either is sent to its login page). */
export function hasCredentials(auth: Authenticator, headers: HeaderBag): boolean {
  return readPresentedKey(headers).kind !== 'none' || liveSession(auth, headers) !== undefined;
}

const REASONS: Record<number, string> = {
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/**
 * Answer a WebSocket upgrade with a plain HTTP error (the JSON envelope) and close the socket.
 * Nothing is proxied and no upstream connection is opened.
 */
export function rejectUpgrade(socket: Duplex, err: HestiaError): void {
  const body = JSON.stringify(err.toBody());
  const head = [
    `HTTP/1.1 ${err.status} ${REASONS[err.status] ?? 'Error'}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Cache-Control: no-store',
    'Connection: close',
    ...Object.entries(err.headers).map(([k, v]) => `${k}: ${v}`),
  ];
  if (socket.writable) socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
  else socket.destroy();
}

/**
 * Did the client reach us over https? True for a TLS socket or `X-Forwarded-Proto: https`.
 * The header is believed even without `trust_proxy`: it only decides whether the session cookie
 * gets `Secure`, and a client that lies about it only makes its own cookie unusable over http.
 */
export function isHttpsRequest(headers: HeaderBag, socket: object): boolean {
  // A TLSSocket has `encrypted: true`; a plain net.Socket has no such property.
  if ((socket as Partial<TLSSocket>).encrypted === true) return true;
  const xfp = headers['x-forwarded-proto'];
  const first = (Array.isArray(xfp) ? xfp[0] : xfp)?.split(',')[0]?.trim().toLowerCase();
  return first === 'https';
}

/**
 * CSRF defence for requests authenticated by the session cookie (never needed for API keys: a
 * browser does not attach those on its own).
 *
 * SameSite=Strict already keeps the cookie off every request another *site* starts. But a site is
 * the registrable domain, so a page on a sibling host (`evil.example.com` next to
 * `hestia.example.com`) or another port of the same host is "same-site" and would still get the
 * cookie. So a state-changing request must also prove it comes from our own origin:
 * - `Origin` present: its host (and port) must equal the `Host` the request was sent to (or the
 *   `X-Forwarded-Host` our trusted proxy set, when `trust_proxy` is on). `Origin: null` fails.
 * - `Origin` absent (older browsers on same-origin POSTs): `Sec-Fetch-Site: same-origin` passes.
 * - neither: refused. Scripts and curl should use an API key, which needs no such check.
 */
export function isSameOrigin(headers: HeaderBag, trustProxy: boolean): boolean {
  const origin = one(headers.origin);
  if (origin !== undefined) {
    let originHost: string;
    try {
      const u = new URL(origin);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
      originHost = u.host.toLowerCase();
    } catch {
      return false;
    }
    const hosts = [one(headers.host)];
    if (trustProxy) hosts.push(one(headers['x-forwarded-host'])?.split(',')[0]?.trim());
    return hosts.some((h) => h !== undefined && normaliseHost(h) === originHost);
  }
  return one(headers['sec-fetch-site']) === 'same-origin';
}

/** `Host` as URL.host would print it (lower-case, default ports dropped). */
function normaliseHost(host: string): string {
  try {
    return new URL(`http://${host}`).host.toLowerCase();
  } catch {
    return '';
  }
}

function one(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method.toUpperCase());
}
