/**
 * Header rules of the proxy (SPEC §4), in both directions.
 *
 * Requests are built from `req.rawHeaders` in one pass: duplicates and value bytes arrive
 * upstream exactly as the client sent them, and Node never has to build the lazy
 * `req.headers` object on the hot path.
 *
 * ## Hop-by-hop headers
 * Connection, Keep-Alive, Proxy-Authenticate, Proxy-Authorization, Proxy-Connection, TE,
 * Trailer, Transfer-Encoding and Upgrade describe one connection and never pass (Upgrade and
 * `Connection: upgrade` are re-created for WebSocket upgrades). `Expect` is dropped too: Node
 * answers `100 Continue` to the client itself, and the upstream hop is framed by undici.
 *
 * ## Names listed in `Connection:` (decision)
 * RFC 9110 §7.6.1 says a proxy removes every header named in `Connection`, and we do, with one
 * exception: a client-controlled token must not be able to delete a header that carries
 * request framing, credentials or identity. The classic abuse is `Connection: close,
 * X-Forwarded-For` to make an upstream see the gateway's loopback address as the client
 * (bypassing IP allow-lists), or listing `Content-Length` to change how the body is framed.
 * So the names in CONNECTION_PROTECTED are forwarded even when listed; the headers the gateway
 * sets itself (X-Forwarded-*, X-Request-ID, Host) are written after filtering and cannot be
 * removed at all. The same rule applies to response headers listed by an upstream.
 *
 * ## Host (decision)
 * The upstream receives its own host (`Host: <upstream host:port>`, like nginx's
 * `proxy_set_header Host $proxy_host`): upstreams with virtual hosts or host checks (Jupyter,
 * code-server, Vite) expect the address they listen on. The client's Host goes in
 * X-Forwarded-Host. undici writes `Host` from the pool's origin, so we simply never copy it.
 *
 * ## X-Forwarded-* (decision)
 * With `server.trust_proxy: false` (default) the client is whoever connected: X-Forwarded-For
 * is replaced by the socket's address and X-Forwarded-Host/-Proto by what this hop saw, so a
 * client cannot forge them. With `trust_proxy: true` (Hestia behind nginx/Caddy) the socket
 * address is appended to an incoming X-Forwarded-For and incoming X-Forwarded-Host/-Proto are
 * kept. `Forwarded` (RFC 7239) and `X-Real-IP` name the client as well: without
 * `trust_proxy` a client could forge them, so they are dropped; with it they pass untouched.
 *
 * ## The session cookie (decision)
 * `hestia_session` is the gateway's own (dashboard and door sessions, auth/session.ts), on the
 * same origin as every service. An upstream's `Set-Cookie` for that name (setting or clearing
 * it) is dropped in every response relayed to a client, so a service cannot fixate, replace or
 * log out the owner's session.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { SESSION_COOKIE } from '../auth/session.ts';

/** Never forwarded in either direction (lower-case). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** Forwarded even when a `Connection:` header lists them (see the module comment). */
export const CONNECTION_PROTECTED: ReadonlySet<string> = new Set([
  'authorization',
  'cookie',
  'set-cookie',
  'content-length',
  'content-type',
  'content-encoding',
  'content-range',
  'location',
  'host',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-real-ip',
  'x-request-id',
]);

/** An incoming X-Request-ID is kept only when it is short and made of safe characters. */
const REQUEST_ID_RE = /^[A-Za-z0-9._:+=@/-]{1,128}$/;

export function isValidRequestId(value: string): boolean {
  return REQUEST_ID_RE.test(value);
}

/** `Connection: keep-alive` / `close` alone, any case: the common value, which names no header. */
const PLAIN_CONNECTION_RE = /^[ \t]*(?:keep-alive|close)[ \t]*$/i;

/** Tokens of a Connection header that name other headers (keep-alive/close/upgrade are options). */
function addConnectionTokens(value: string, into: Set<string> | null): Set<string> | null {
  // Nearly every upstream response says `Connection: keep-alive`: answer that without the
  // split/trim/lower-case allocations (this function was Hestia's top self-time in a profile).
  if (PLAIN_CONNECTION_RE.test(value)) return into;
  for (const raw of value.split(',')) {
    const t = raw.trim().toLowerCase();
    if (t === '' || t === 'keep-alive' || t === 'close' || t === 'upgrade') continue;
    if (CONNECTION_PROTECTED.has(t)) continue;
    into ??= new Set();
    into.add(t);
  }
  return into;
}

/** Remove every name in `names` from a flat [name, value, …] list, in place. */
function removeNamed(flat: string[], names: ReadonlySet<string>): void {
  let w = 0;
  for (let r = 0; r < flat.length; r += 2) {
    const name = flat[r]!;
    if (names.has(name.toLowerCase())) continue;
    flat[w++] = name;
    flat[w++] = flat[r + 1]!;
  }
  flat.length = w;
}

export interface UpstreamRequestHead {
  /** Flat [name, value, …] list for undici / node:http. */
  headers: string[];
  /** The request id used upstream, in logs and echoed to the client. */
  requestId: string;
  /** The request announces a body (Content-Length > 0 or Transfer-Encoding). */
  hasBody: boolean;
}

/** Credential headers an auth hook may strip or rewrite in `req.headers` (see ProxyHooks). */
const CREDENTIALS: readonly string[] = ['authorization', 'cookie', 'x-api-key'];

/**
 * Build the upstream request headers from the client's raw headers.
 * `upgrade` is the client's Upgrade value when forwarding a WebSocket handshake, else null.
 * `credentialsFromParsed`: an auth hook ran and may have edited Authorization, Cookie and
 * X-API-Key in `req.headers`; those three are then taken from there, not from the raw list.
 */
export function buildUpstreamHeaders(
  req: IncomingMessage,
  trustProxy: boolean,
  upgrade: string | null,
  credentialsFromParsed = false,
): UpstreamRequestHead {
  return buildFromRaw(req.rawHeaders, req.socket, trustProxy, upgrade, credentialsFromParsed ? req.headers : null);
}

/**
 * The upstream headers of a `POST /v1/requests` dispatch, by the same rules as a proxied
 * request: `given` (the validated `headers` of the dispatcher body, lower-case names) stands in
 * for the client's header list, and the dispatcher's own HTTP request is the hop the X-Forwarded-*
 * headers describe. Its Host becomes X-Forwarded-Host, and its X-Request-ID is used when `given`
 * names none. The gateway's own credentials are never in `given`, so nothing is stripped.
 */
export function buildDispatchHeaders(
  given: Readonly<Record<string, string>>,
  client: IncomingMessage,
  trustProxy: boolean,
): UpstreamRequestHead {
  const raw: string[] = [];
  for (const name of Object.keys(given)) raw.push(name, given[name]!);
  const host = client.headers.host;
  if (host !== undefined) raw.push('host', host);
  const id = client.headers['x-request-id'];
  if (given['x-request-id'] === undefined && typeof id === 'string') raw.push('x-request-id', id);
  return buildFromRaw(raw, client.socket, trustProxy, null, null);
}

interface HopSocket {
  readonly remoteAddress?: string | undefined;
}

function buildFromRaw(
  raw: readonly string[],
  socket: HopSocket,
  trustProxy: boolean,
  upgrade: string | null,
  parsed: IncomingMessage['headers'] | null,
): UpstreamRequestHead {
  const credentialsFromParsed = parsed !== null;
  const out: string[] = [];
  let connectionTokens: Set<string> | null = null;
  let host: string | undefined;
  let xff: string | undefined;
  let xfHost: string | undefined;
  let xfProto: string | undefined;
  let requestId: string | undefined;
  let hasBody = false;

  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    switch (lower) {
      case 'host':
        host ??= value;
        continue;
      case 'connection':
        connectionTokens = addConnectionTokens(value, connectionTokens);
        continue;
      case 'transfer-encoding':
        hasBody = true;
        continue;
      case 'content-length':
        if (value !== '0') hasBody = true;
        break;
      case 'expect':
        continue;
      case 'authorization':
      case 'cookie':
      case 'x-api-key':
        if (credentialsFromParsed) continue;
        break;
      case 'x-request-id':
        if (requestId === undefined && isValidRequestId(value)) requestId = value;
        continue;
      case 'x-forwarded-for':
        if (trustProxy) xff = xff === undefined ? value : `${xff}, ${value}`;
        continue;
      case 'x-forwarded-host':
        if (trustProxy) xfHost ??= value;
        continue;
      case 'x-forwarded-proto':
        if (trustProxy) xfProto ??= value;
        continue;
      case 'forwarded':
      case 'x-real-ip':
        if (!trustProxy) continue;
        break;
      default:
        if (HOP_BY_HOP.has(lower)) continue;
    }
    out.push(name, value);
  }

  if (parsed !== null) {
    for (const name of CREDENTIALS) {
      const v = parsed[name];
      if (v !== undefined) out.push(name, Array.isArray(v) ? v.join(', ') : v);
    }
  }
  if (connectionTokens !== null) removeNamed(out, connectionTokens);

  const client = socket.remoteAddress ?? '';
  requestId ??= randomUUID();
  out.push(
    'x-forwarded-for',
    xff === undefined ? client : `${xff}, ${client}`,
    'x-forwarded-proto',
    xfProto ?? ((socket as { encrypted?: boolean }).encrypted ? 'https' : 'http'),
    'x-request-id',
    requestId,
  );
  const fwdHost = xfHost ?? host;
  if (fwdHost !== undefined) out.push('x-forwarded-host', fwdHost);
  if (upgrade !== null) out.push('connection', 'Upgrade', 'upgrade', upgrade);
  return { headers: out, requestId, hasBody };
}

/** A `Set-Cookie` value naming the gateway's session cookie (see the module comment). */
export function setsSessionCookie(value: string): boolean {
  const eq = value.indexOf('=');
  return eq !== -1 && value.slice(0, eq).trim() === SESSION_COOKIE;
}

/** An upstream response header that never reaches the client as-is (raw relays: WebSocket). */
export function isSessionCookieHeader(name: string, value: string): boolean {
  return name.length === 10 && name.toLowerCase() === 'set-cookie' && setsSessionCookie(value);
}

export interface ResponseHead {
  /** Flat [name, value, …] list for `res.writeHead`. Duplicates (Set-Cookie) stay separate. */
  headers: string[];
  /** `Content-Type: text/event-stream`: gets `X-Accel-Buffering: no`. */
  eventStream: boolean;
}

/**
 * Build the client response headers from undici's raw upstream headers (Buffers, latin1 so
 * value bytes survive). Hop-by-hop headers and the upstream's own X-Request-ID are dropped;
 * the caller appends the gateway's headers.
 */
export function buildResponseHeaders(raw: Buffer[]): ResponseHead {
  const out: string[] = [];
  let connectionTokens: Set<string> | null = null;
  let eventStream = false;
  // The upstream's own X-Accel-Buffering ([name, value, …]), held back until we know whether
  // this is an event stream: then ours replaces it (set, not appended: not `no, no`).
  let accel: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const value = raw[i + 1]!.toString('latin1');
    const lower = name.toLowerCase();
    if (lower === 'connection') {
      connectionTokens = addConnectionTokens(value, connectionTokens);
      continue;
    }
    if (HOP_BY_HOP.has(lower) || lower === 'x-request-id') continue;
    if (lower === 'set-cookie' && setsSessionCookie(value)) continue;
    if (lower === 'content-type' && value.toLowerCase().startsWith('text/event-stream')) eventStream = true;
    else if (lower === 'x-accel-buffering') {
      accel ??= [];
      accel.push(name, value);
      continue;
    }
    out.push(name, value);
  }
  if (accel !== null && !eventStream) for (let i = 0; i < accel.length; i++) out.push(accel[i]!);
  if (connectionTokens !== null) removeNamed(out, connectionTokens);
  if (eventStream) out.push('x-accel-buffering', 'no');
  return { headers: out, eventStream };
}
