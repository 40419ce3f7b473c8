/**
 * Auth on the control plane (Fastify): one onRequest hook in front of every route, and the
 * dashboard's login routes (`GET /ui/login`, `POST /ui/login`, `POST /ui/logout`).
 *
 * When `auth.enabled` is false the hook returns after one boolean check. When it is true the
 * policy is default-deny — every path needs a credential except this short list, so a path
 * spelled in a way a prefix test would miss (`/V1/…`, `/ui/../v1`) is refused rather than let
 * through:
 *
 * | path                           | needs                                                       |
 * | ------------------------------ | ----------------------------------------------------------- |
 * | `/healthz`                     | nothing, unless `auth.protect_healthz` (default false)      |
 * | `/metrics`                     | a key or session, unless `auth.protect_metrics` is false (default true) |
 * | `/ui/login`, `/ui/logout`      | nothing (they are how one gets a session)                   |
 * | `/ui`, `/ui/*`                 | a session (or a key); a browser without one is sent to the login page |
 * | everything else (`/v1/*`, …)   | an API key, or a dashboard session (+ same-origin check for state-changing methods) |
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { readPresentedKey } from '../auth/api-keys.ts';
import type { AuthOutcome } from '../auth/authenticate.ts';
import { loginPage } from '../auth/login-page.ts';
import { verifyPassword } from '../auth/password.ts';
import { isHttpsRequest, isSafeMethod, isSameOrigin } from '../auth/request-guards.ts';
import { readCookieValues, SESSION_COOKIE, sessionCookie } from '../auth/session.ts';
import { HestiaError } from '../errors.ts';
import type { GatewayContext } from '../gateway-context.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who made this request, when auth is enabled and the request passed the hook; else null. */
    hestiaAuth: AuthOutcome | null;
  }
}

type Access = 'open' | 'credential' | 'ui';

function classify(path: string, ctx: GatewayContext): Access {
  const auth = ctx.config.auth;
  if (path === '/healthz') return auth.protect_healthz ? 'credential' : 'open';
  if (path === '/metrics') return auth.protect_metrics ? 'credential' : 'open';
  if (path === '/ui/login' || path === '/ui/logout') return 'open';
  if (path === '/ui' || path.startsWith('/ui/')) return 'ui';
  return 'credential';
}

/** Install the hook on the root instance (so it runs for every route) and the login routes. */
export async function registerAuth(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  app.decorateRequest('hestiaAuth', null);

  app.addHook('onRequest', async (req, reply) => {
    if (!ctx.auth.enabled) return;
    const path = req.url.split('?')[0] ?? '/';
    // The dispatcher's admission answers 503 while shutting down before its auth step, as every
    // door does (proxy/admission.ts); nothing is forwarded either way.
    if (ctx.shuttingDown && path === '/v1/requests') return;
    const access = classify(path, ctx);
    if (access === 'open') return;

    const auth = ctx.auth;
    const client = auth.clientAddress(req.headers, req.socket.remoteAddress);
    let outcome: AuthOutcome;
    const session = readPresentedKey(req.headers).kind === 'none' ? sessionOf(req, ctx) : undefined;
    if (session) {
      if (!isSafeMethod(req.method) && !isSameOrigin(req.headers, ctx.config.server.trust_proxy)) {
        outcome = auth.deny('csrf', client, path, { method: req.method });
      } else {
        outcome = { ok: true, keyName: session.username, via: 'session', services: null };
      }
    } else if (access === 'ui' && readPresentedKey(req.headers).kind === 'none') {
      // A browser without a session: to the login page (HTML navigations), else 401.
      const hadCookie = readCookieValues(req.headers.cookie, SESSION_COOKIE).length > 0;
      const denied = auth.deny(hadCookie ? 'no_session' : 'missing_key', client, path);
      if ((req.method === 'GET' || req.method === 'HEAD') && acceptsHtml(req)) {
        return reply.redirect(`/ui/login?next=${encodeURIComponent(safeNext(req.url))}`, 303);
      }
      outcome = denied;
    } else {
      outcome = auth.authenticate(req.headers, req.socket.remoteAddress, path);
      if (
        !outcome.ok &&
        outcome.reason === 'missing_key' &&
        readCookieValues(req.headers.cookie, SESSION_COOKIE).length
      )
        outcome = {
          ...outcome,
          error: new HestiaError('HESTIA_UNAUTHORIZED', 'session expired: log in again at /ui/login'),
        };
    }
    if (!outcome.ok) throw outcome.error;
    req.hestiaAuth = outcome;
  });

  // A scoped key may use POST /v1/requests only for its own services; the service id is in the
  // body, which exists only after parsing, hence a preHandler.
  app.addHook('preHandler', async (req) => {
    const who = req.hestiaAuth;
    if (!who?.ok || who.services === null) return;
    if (req.method !== 'POST' || (req.url.split('?')[0] ?? '') !== '/v1/requests') return;
    const serviceId = (req.body as { serviceId?: unknown } | null | undefined)?.serviceId;
    if (typeof serviceId !== 'string') return; // the route answers 400 for a missing id
    if (!who.services.includes(serviceId)) {
      const client = ctx.auth.clientAddress(req.headers, req.socket.remoteAddress);
      throw ctx.auth.deny('forbidden', client, '/v1/requests', { keyName: who.keyName, serviceId }).error;
    }
  });

  await app.register(loginRoutes(ctx));
}

function sessionOf(req: FastifyRequest, ctx: GatewayContext) {
  for (const id of readCookieValues(req.headers.cookie, SESSION_COOKIE)) {
    const s = ctx.auth.sessions.get(id);
    if (s) return s;
  }
  return undefined;
}

function acceptsHtml(req: FastifyRequest): boolean {
  const accept = req.headers.accept ?? '';
  return accept.includes('text/html');
}

/** Where to go after login: only a path under /ui on this host (never `//evil`, never a URL). */
function safeNext(next: unknown): string {
  if (typeof next !== 'string') return '/ui';
  // No backslashes (some browsers read `/\\evil` as `//evil`) and no control characters.
  if (!/^\/ui(?:[/?#]|$)/.test(next) || /[\\\p{Cc}]/u.test(next)) return '/ui';
  return next;
}

function loginRoutes(ctx: GatewayContext) {
  return async function routes(app: FastifyInstance): Promise<void> {
    // HTML forms post urlencoded; this parser exists only inside this plugin.
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 8 * 1024 },
      (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );

    const page = (reply: FastifyReply, status: number, opts: { error?: string; next?: string } = {}) =>
      reply
        .status(status)
        .header('content-type', 'text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .header(
          'content-security-policy',
          "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        )
        .header('x-frame-options', 'DENY')
        .send(
          loginPage({
            ...opts,
            configured: ctx.config.auth.dashboard !== undefined,
            enabled: ctx.config.auth.enabled,
          }),
        );

    app.get('/ui/login', async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      return page(reply, 200, { next: safeNext(q.next) });
    });

    app.post('/ui/login', { bodyLimit: 8 * 1024 }, async (req, reply) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const isForm = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
      const next = safeNext(body.next);
      const fail = (err: HestiaError, message: string) => {
        for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
        return isForm ? page(reply, err.status, { error: message, next }) : reply.status(err.status).send(err.toBody());
      };
      const auth = ctx.auth;
      const client = auth.clientAddress(req.headers, req.socket.remoteAddress);

      // Login CSRF: a foreign page must not log the browser into *our* account either.
      if (req.headers.origin !== undefined && !isSameOrigin(req.headers, ctx.config.server.trust_proxy)) {
        const d = auth.deny('csrf', client, '/ui/login');
        return fail(d.error, 'cross-origin login refused');
      }
      const result = await attemptLogin(ctx, client, req.headers.cookie, body.username, body.password, '/ui/login');
      if ('error' in result) return fail(result.error, result.message);
      const { id, ttl, username } = result;
      reply.header(
        'set-cookie',
        sessionCookie(id, { maxAgeSeconds: ttl / 1000, secure: isHttpsRequest(req.headers, req.socket) }),
      );
      reply.header('cache-control', 'no-store');
      if (isForm) return reply.redirect(next, 303);
      return reply.status(200).send({ ok: true, username });
    });

    app.post('/ui/logout', async (req, reply) => {
      if (req.headers.origin !== undefined && !isSameOrigin(req.headers, ctx.config.server.trust_proxy)) {
        const client = ctx.auth.clientAddress(req.headers, req.socket.remoteAddress);
        throw ctx.auth.deny('csrf', client, '/ui/logout').error;
      }
      for (const id of readCookieValues(req.headers.cookie, SESSION_COOKIE)) ctx.auth.sessions.destroy(id);
      reply.header(
        'set-cookie',
        sessionCookie('', { maxAgeSeconds: 0, secure: isHttpsRequest(req.headers, req.socket) }),
      );
      const isForm = (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');
      if (isForm || acceptsHtml(req)) return reply.redirect('/ui/login', 303);
      return reply.status(204).send();
    });
  };
}

/**
 * The dashboard's login check (its users, limits and scrypt slots), shared by `/ui/login` and a
 * door's `/.hestia/login` (server/doors.ts): a fresh session on success (an old cookie's ends).
 */
export async function attemptLogin(
  ctx: GatewayContext,
  client: string,
  cookie: string | string[] | undefined,
  usernameIn: unknown,
  passwordIn: unknown,
  path: string,
): Promise<{ error: HestiaError; message: string } | { id: string; ttl: number; username: string }> {
  const auth = ctx.auth;
  const dashboard = ctx.config.auth.dashboard;
  if (!ctx.config.auth.enabled) {
    // No sessions while auth is off: there is nothing to protect, and no cookie to leak.
    const err = new HestiaError('HESTIA_NOT_FOUND', 'authentication is disabled; the dashboard needs no login');
    return { error: err, message: err.message };
  }
  if (!dashboard) {
    const err = new HestiaError('HESTIA_UNAUTHORIZED', 'dashboard login is not configured (auth.dashboard)');
    return { error: err, message: err.message };
  }
  const blocked = auth.loginLimiter.check(client);
  if (blocked.blocked) {
    const err = auth.blockedLogin(blocked.retryAfterMs);
    return { error: err, message: err.message };
  }
  // scrypt is costly: a cap in total and per address (auth.loginGate), so one client cannot
  // hold every slot and lock the dashboard's owner out.
  const slot = auth.loginGate.enter(client);
  if (!slot.ok) {
    const err = new HestiaError(
      'HESTIA_TOO_MANY_REQUESTS',
      slot.reason === 'address'
        ? 'a login from this address is already being checked; try again'
        : 'too many logins at once; try again',
      {},
      { 'retry-after': '1' },
    );
    return { error: err, message: err.message };
  }
  const username = typeof usernameIn === 'string' ? usernameIn : '';
  const password = typeof passwordIn === 'string' ? passwordIn : '';

  let ok: boolean;
  try {
    const userOk = equalStrings(username, dashboard.username);
    // Always run scrypt, so a wrong username is not faster than a wrong password.
    const passOk = await verifyPassword(password, dashboard.password_hash);
    ok = userOk && passOk && password.length > 0;
  } finally {
    slot.leave();
  }

  if (!ok) {
    const r = auth.loginLimiter.fail(client);
    const d = auth.deny('bad_login', client, path, r.blocked ? { blockedForMs: r.retryAfterMs } : {});
    return { error: d.error, message: 'wrong username or password' };
  }
  auth.loginLimiter.succeed(client);
  // A fresh id on every login (no session fixation); an old cookie's session ends.
  for (const old of readCookieValues(cookie, SESSION_COOKIE)) auth.sessions.destroy(old);
  const ttl = dashboard.session_ttl_ms;
  const { id } = auth.sessions.create(dashboard.username, ttl);
  return { id, ttl, username: dashboard.username };
}

/** Constant-time string equality (hash first so lengths do not leak either). */
function equalStrings(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}
