/**
 * The host and port doors at the server (SPEC §10, docs/doors.md), and the Host/Origin checks
 * with auth off.
 *
 * - Host door: on the main listener, a request whose `Host` (port and trailing dot ignored,
 *   case-insensitive) is a service's name goes to that service's whole-origin door
 *   (proxy/origin-doors.ts); any other host gets the main API as before. The table is rebuilt
 *   when the config object changes (a reload); a request pays one Map lookup on the lowercased
 *   host only when some host door is configured, nothing when none is.
 * - Port door: `PortDoors` keeps one node:http listener per service with `listen`, following
 *   reloads (added, removed, moved); every request and upgrade on it goes to that service.
 * - `/.hestia/` on those doors: `status`, and with auth on `login` / `logout` (the dashboard's
 *   users; a session cookie for that origin, SameSite=Lax). A browser navigation without a key
 *   or session goes to `/.hestia/login`; anything else without one gets the proxy's 401.
 * - Auth off: a `Host` Hestia does not serve → 421 (DNS rebinding); a cross-site state-changing
 *   request to `/v1/*` or `/ui` → 403.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { loginPage } from '../auth/login-page.ts';
import { hasCredentials, isHttpsRequest, isSameOrigin, liveSession, rejectUpgrade } from '../auth/request-guards.ts';
import { readCookieValues, SESSION_COOKIE, sessionCookie } from '../auth/session.ts';
import { hostTable, type PortDoorConfig, portDoors } from '../config/doors.ts';
import type { Config } from '../config/schema.ts';
import { HestiaError, sendError } from '../errors.ts';
import type { GatewayContext } from '../gateway-context.ts';
import type { Door } from '../proxy/admission.ts';
import type { ProxyHandler } from '../proxy/handler.ts';
import { requestHost } from '../proxy/origin-doors.ts';
import { attemptLogin } from './control-plane-auth.ts';
import {
  hardenServer,
  isWebSocketUpgrade,
  malformedHead,
  rawErrorResponse,
  refuseMalformed,
  SERVER_OPTIONS,
  serveAsPlainHttp,
} from './http-hygiene.ts';

type OriginDoor = { readonly serviceId: string; readonly door: Door<IncomingMessage> };

const HESTIA_PREFIX = '/.hestia/';
const STATE_CHANGING = /^(?:\/v1\/|\/ui(?:[/?]|$))/;

export class FrontDoors {
  private seen: Config | null = null;
  /** Lowercased host → its service's host door. */
  private hosts = new Map<string, OriginDoor>();
  private allowed = new Set<string>();

  constructor(
    private readonly ctx: GatewayContext,
    private readonly proxy: ProxyHandler,
  ) {}

  private sync(): void {
    const config = this.ctx.config;
    if (config === this.seen) return;
    this.seen = config;
    const hosts = new Map<string, OriginDoor>();
    for (const [host, id] of hostTable(config))
      hosts.set(host, { serviceId: id, door: this.proxy.originDoor(id, 'host') });
    this.hosts = hosts;
    this.allowed = new Set(config.server.allowed_hosts);
  }
  /** The listeners' body idle timeout (server.request_idle_timeout_ms), for the port doors. */
  requestIdleTimeoutMs(): number {
    return this.ctx.config.server.request_idle_timeout_ms;
  }

  /** The main listener's request, before the proxy/Fastify split: true when answered here. */
  onRequest(req: IncomingMessage, res: ServerResponse): boolean {
    this.sync();
    if (this.hosts.size === 0 && this.ctx.auth.enabled) return false;
    const host = requestHost(req);
    const origin = this.hosts.get(host);
    if (origin !== undefined) {
      this.serveOrigin(origin, req, res);
      return true;
    }
    if (this.ctx.auth.enabled) return false;
    const refused = this.refuseHost(host) ?? this.refuseCrossSite(req);
    if (refused === null) return false;
    sendError(res, refused);
    return true;
  }

  /** The main listener's upgrade: a host door's, a refused host, or false (the proxy's as before). */
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    this.sync();
    if (this.hosts.size === 0 && this.ctx.auth.enabled) return false;
    const host = requestHost(req);
    const origin = this.hosts.get(host);
    if (origin !== undefined) {
      this.proxy.handleUpgrade(req, socket, head, origin.door);
      return true;
    }
    const refused = this.ctx.auth.enabled ? null : this.refuseHost(host);
    if (refused === null) return false;
    rejectUpgrade(socket, refused);
    return true;
  }

  /** A port door's request or upgrade (always the listener's service): the Host check with auth off, then the origin. */
  onPortRequest(origin: OriginDoor, req: IncomingMessage, res: ServerResponse): void {
    this.sync();
    const refused = this.ctx.auth.enabled ? null : this.refuseHost(requestHost(req));
    if (refused !== null) sendError(res, refused);
    else this.serveOrigin(origin, req, res);
  }

  onPortUpgrade(origin: OriginDoor, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.sync();
    const refused = this.ctx.auth.enabled ? null : this.refuseHost(requestHost(req));
    if (refused !== null) rejectUpgrade(socket, refused);
    else this.proxy.handleUpgrade(req, socket, head, origin.door);
  }

  /** DNS-rebinding defence (auth off): a name Hestia does not serve. */
  private refuseHost(host: string): HestiaError | null {
    if (host === '' || host === 'localhost' || host.endsWith('.localhost')) return null;
    if (host.startsWith('[') || isIP(host) !== 0) return null;
    if (this.hosts.has(host) || this.allowed.has(host)) return null;
    return new HestiaError(
      'HESTIA_MISDIRECTED',
      `hestia does not serve the host '${host}': add it to server.allowed_hosts (or to a service's hosts) to allow it`,
      { host, setting: 'server.allowed_hosts' },
    );
  }

  /** Auth off: a browser-marked cross-site state-changing request to the control plane. */
  private refuseCrossSite(req: IncomingMessage): HestiaError | null {
    const method = req.method ?? 'GET';
    if (method === 'GET' || method === 'HEAD' || method === 'OPTIONS') return null;
    if (!STATE_CHANGING.test(req.url ?? '')) return null;
    const h = req.headers;
    const site = h['sec-fetch-site'];
    const crossSite =
      site === 'cross-site' || (h.origin !== undefined && !isSameOrigin(h, this.ctx.config.server.trust_proxy));
    if (!crossSite) return null;
    return new HestiaError(
      'HESTIA_FORBIDDEN',
      'cross-site request refused: the browser marked it as started by another site',
      {
        origin: h.origin ?? null,
      },
    );
  }

  /** A host or port door's request: `/.hestia/…`, the login redirect, or the service. */
  private serveOrigin(origin: OriginDoor, req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '';
    if (url.startsWith(HESTIA_PREFIX)) {
      this.hestiaRoute(origin, req, res).catch((err: unknown) => {
        if (err instanceof HestiaError) return void sendError(res, err);
        this.ctx.log.error({ err, service_id: origin.serviceId }, '/.hestia/ route failed');
        sendError(res, new HestiaError('HESTIA_INTERNAL', 'internal error in the gateway'));
      });
      return;
    }
    if (this.ctx.auth.enabled && isNavigation(req) && !hasCredentials(this.ctx.auth, req.headers)) {
      res.writeHead(303, { location: `/.hestia/login?next=${encodeURIComponent(url)}`, 'cache-control': 'no-store' });
      res.end();
      return;
    }
    this.proxy.handleRequest(req, res, origin.door);
  }

  private async hestiaRoute(origin: OriginDoor, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ctx = this.ctx;
    const q = (req.url ?? '').indexOf('?');
    const path = q < 0 ? (req.url ?? '') : (req.url ?? '').slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : (req.url ?? '').slice(q + 1));
    const method = req.method ?? 'GET';
    const svc = ctx.services.get(origin.serviceId);
    if (path === '/.hestia/status' && (method === 'GET' || method === 'HEAD')) {
      if (ctx.auth.enabled && liveSession(ctx.auth, req.headers) === undefined) {
        const out = ctx.auth.authenticate(req.headers, req.socket.remoteAddress, path, origin.serviceId);
        if (!out.ok) return void sendError(res, out.error);
      }
      if (svc === undefined) return void sendError(res, new HestiaError('HESTIA_NOT_FOUND', 'the service was removed'));
      await svc.probe?.();
      return sendJson(res, 200, svc.status(), method === 'HEAD');
    }
    if (!ctx.auth.enabled && (path === '/.hestia/login' || path === '/.hestia/logout'))
      return void sendError(res, new HestiaError('HESTIA_NOT_FOUND', 'authentication is disabled; no login needed'));
    const secure = isHttpsRequest(req.headers, req.socket);
    if (path === '/.hestia/login' && method === 'GET')
      return sendHtml(res, 200, this.loginHtml(origin, safeNext(query.get('next'))));
    if (path === '/.hestia/login' && method === 'POST') {
      const client = ctx.auth.clientAddress(req.headers, req.socket.remoteAddress);
      const form = new URLSearchParams(await readSmallBody(req));
      const next = safeNext(form.get('next'));
      if (req.headers.origin !== undefined && !isSameOrigin(req.headers, ctx.config.server.trust_proxy)) {
        const d = ctx.auth.deny('csrf', client, path);
        return sendHtml(res, d.error.status, this.loginHtml(origin, next, 'cross-origin login refused'));
      }
      const r = await attemptLogin(ctx, client, req.headers.cookie, form.get('username'), form.get('password'), path);
      if ('error' in r) {
        for (const [k, v] of Object.entries(r.error.headers)) res.setHeader(k, v);
        return sendHtml(res, r.error.status, this.loginHtml(origin, next, r.message));
      }
      res.writeHead(303, {
        location: next,
        'set-cookie': sessionCookie(r.id, { maxAgeSeconds: r.ttl / 1000, secure, sameSite: 'Lax' }),
        'cache-control': 'no-store',
      });
      res.end();
      return;
    }
    if (path === '/.hestia/logout' && method === 'POST') {
      if (req.headers.origin !== undefined && !isSameOrigin(req.headers, ctx.config.server.trust_proxy))
        return void sendError(res, new HestiaError('HESTIA_FORBIDDEN', 'cross-origin logout refused'));
      for (const id of readCookieValues(req.headers.cookie, SESSION_COOKIE)) ctx.auth.sessions.destroy(id);
      res.writeHead(303, {
        location: '/.hestia/login',
        'set-cookie': sessionCookie('', { maxAgeSeconds: 0, secure, sameSite: 'Lax' }),
        'cache-control': 'no-store',
      });
      res.end();
      return;
    }
    sendError(res, new HestiaError('HESTIA_NOT_FOUND', `no route ${method} ${path}`));
  }

  private loginHtml(origin: OriginDoor, next: string, error?: string): string {
    return loginPage({
      action: '/.hestia/login',
      title: `Hestia: ${origin.serviceId}`,
      next,
      configured: this.ctx.config.auth.dashboard !== undefined,
      enabled: this.ctx.config.auth.enabled,
      ...(error === undefined ? {} : { error }),
    });
  }
}

/**
 * The port doors' listeners. `sync` opens the new ones first (a port that cannot be bound fails
 * it, naming service and port, with nothing changed), then closes the removed ones: their
 * in-flight requests finish, idle keep-alive connections close.
 */
export class PortDoors {
  /** `host:port` → the listener and which service it serves (a swap keeps the listener). */
  private readonly listeners = new Map<string, { server: Server; origin: OriginDoor }>();
  /** Listeners closed but with connections still open (in-flight requests finishing). */
  private readonly closing = new Set<Server>();

  constructor(
    private readonly front: FrontDoors,
    private readonly proxy: ProxyHandler,
    private readonly defaultHost: string,
  ) {}

  /** `http://host:port` per service with a port door (ports as bound: `listen: 0` gets a free one). */
  urls(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const { server, origin } of this.listeners.values()) {
      const a = server.address();
      if (a === null || typeof a === 'string') continue;
      out[origin.serviceId] = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
    }
    return out;
  }

  async sync(config: Config): Promise<void> {
    const wanted = new Map<string, PortDoorConfig>();
    for (const d of portDoors(config)) wanted.set(this.key(d), d);
    const opened: string[] = [];
    try {
      for (const [key, d] of wanted) {
        if (this.listeners.has(key)) continue;
        const origin = { serviceId: d.serviceId, door: this.proxy.originDoor(d.serviceId, 'port') };
        this.listeners.set(key, { server: await this.open(d, origin), origin });
        opened.push(key);
      }
    } catch (err) {
      await Promise.all(opened.map((k) => this.closeOne(k)));
      throw err;
    }
    for (const [key, l] of this.listeners) {
      const d = wanted.get(key);
      if (d === undefined) void this.closeOne(key);
      else if (d.serviceId !== l.origin.serviceId)
        l.origin = { serviceId: d.serviceId, door: this.proxy.originDoor(d.serviceId, 'port') };
    }
  }

  /** Stop accepting; resolves when every connection has ended (shutdown closes them). */
  close(): Promise<void> {
    return Promise.all([...this.listeners.keys()].map((k) => this.closeOne(k))).then(() => {});
  }

  closeIdleConnections(): void {
    for (const s of this.closing) s.closeIdleConnections();
  }

  closeAllConnections(): void {
    for (const s of this.closing) s.closeAllConnections();
  }

  private key(d: PortDoorConfig): string {
    // `listen: 0` (any free port) is per service: two of them never share a listener.
    return `${d.host ?? this.defaultHost}:${d.port}${d.port === 0 ? ` ${d.serviceId}` : ''}`;
  }

  private open(d: PortDoorConfig, origin: OriginDoor): Promise<Server> {
    const host = d.host ?? this.defaultHost;
    const entryKey = this.key(d);
    // The same listener hygiene as the main port (http-hygiene.ts): the envelope for node:http's
    // own errors, Host checks, idle timeouts only, h2c served as plain HTTP/1.1.
    const server = createServer(SERVER_OPTIONS, (req, res) => {
      if (refuseMalformed(req, res)) return;
      this.front.onPortRequest(this.listeners.get(entryKey)?.origin ?? origin, req, res);
    });
    hardenServer(server, this.front.requestIdleTimeoutMs());
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (!isWebSocketUpgrade(req)) serveAsPlainHttp(server, req, socket, head);
      else {
        const bad = malformedHead(req);
        if (bad !== null) socket.end(rawErrorResponse(bad));
        else this.front.onPortUpgrade(this.listeners.get(entryKey)?.origin ?? origin, req, socket, head);
      }
    });
    return new Promise((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new Error(
            `services.${d.serviceId}.listen: cannot listen on ${host}:${d.port} for service '${d.serviceId}': ${err.code ?? err.message}`,
          ),
        ),
      );
      server.listen({ host, port: d.port }, () => {
        server.removeAllListeners('error');
        server.on('error', () => {}); // after listening, errors are per connection
        resolve(server);
      });
    });
  }

  private closeOne(key: string): Promise<void> {
    const l = this.listeners.get(key);
    if (l === undefined) return Promise.resolve();
    this.listeners.delete(key);
    this.closing.add(l.server);
    const closed = new Promise<void>((resolve) =>
      l.server.close(() => {
        this.closing.delete(l.server);
        resolve();
      }),
    );
    l.server.closeIdleConnections();
    return closed;
  }
}

function isNavigation(req: IncomingMessage): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const mode = req.headers['sec-fetch-mode'];
  if (mode !== undefined) return mode === 'navigate';
  return req.headers.accept?.includes('text/html') === true;
}

/** Where to go after logging in: a local path of this origin only. */
function safeNext(next: string | null): string {
  if (next === null || !next.startsWith('/') || next.startsWith('//') || /[\\\p{Cc}]/u.test(next)) return '/';
  return next;
}

async function readSmallBody(req: IncomingMessage): Promise<string> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > 8 * 1024) throw new HestiaError('HESTIA_PAYLOAD_TOO_LARGE', 'login form too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, status: number, body: unknown, headOnly = false): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(headOnly ? undefined : text);
}

function sendHtml(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(html),
    'cache-control': 'no-store',
    'content-security-policy':
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    'x-frame-options': 'DENY',
  });
  res.end(html);
}
