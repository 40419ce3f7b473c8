/**
 * The proxy entry points, mounted beside Fastify by server/app.ts: every `/services/…`
 * request and WebSocket upgrade comes here without passing through the control-plane router.
 *
 * Request flow (SPEC §4): refuse while shutting down → method → service id → path safety →
 * auth hook → upstream headers → lease (hot path `tryAcquire()`, else the waiting page for a
 * browser, else wait in the service's queue) → forward (exchange.ts). WebSockets: websocket.ts.
 * Refusals (methods, paths, unknown ids, auth) live in check-request.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { gateProxyRequest } from '../auth/http.ts';
import { HestiaError } from '../errors.ts';
import type { GatewayContext } from '../gateway-context.ts';
import { checkRequest } from './check-request.ts';
import { type ForwardedResponse, type ForwardOptions, forwardCollected } from './collected-forward.ts';
import { ProxyCore, type ProxyHooks, type ProxyObserver, type ProxyRequestInfo } from './core.ts';
import { Exchange } from './exchange.ts';
import { buildUpstreamHeaders } from './headers.ts';
import { wantsWaitingPage } from './waiting-page.ts';
import { handleUpgrade } from './websocket.ts';

export type { ForwardedResponse, ForwardOptions } from './collected-forward.ts';
export type { ProxyHooks, ProxyObserver, ProxyRequestInfo } from './core.ts';

export interface ProxyHandler {
  handleRequest(req: IncomingMessage, res: ServerResponse): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /**
   * Forward one request for the dispatcher (`POST /v1/requests`) through the proxy's pools and
   * rules; the response comes back as a stream (collected-forward.ts). The caller holds the lease.
   */
  forward(opts: ForwardOptions): Promise<ForwardedResponse>;
  /**
   * Report a request that was proxied outside handleRequest (the dispatcher): the same one log
   * line and observer call (metrics) as every proxied request.
   */
  report(info: ProxyRequestInfo): void;
  /**
   * Requests whose upstream header/body timeout is running (deadlines.ts): 0 once traffic has
   * ended, whatever way each request ended. For tests and diagnostics.
   */
  timedRequests(): number;
  /** Destroy open WebSocket tunnels and close the upstream pools (shutdown). Idempotent. */
  close(): Promise<void>;
}

function handleRequest(core: ProxyCore, req: IncomingMessage, res: ServerResponse): void {
  const ex = new Exchange(core, req, res);
  try {
    route(core, ex, req);
  } catch (err) {
    // A bug in a collaborator (auth hook, lifecycle) must cost one request, not the process.
    core.ctx.log.error({ err, event_type: 'proxy_internal_error', request_id: ex.requestId }, 'proxy failed');
    ex.reject(new HestiaError('HESTIA_INTERNAL', 'internal error in the gateway'));
  }
}

function route(core: ProxyCore, ex: Exchange, req: IncomingMessage): void {
  const checked = checkRequest(core, req);
  ex.service = checked.service;
  if (checked.error !== null) {
    ex.reject(checked.error);
    return;
  }
  const service = checked.service;
  const head = buildUpstreamHeaders(req, core.ctx.config.server.trust_proxy, null, checked.authed);
  ex.requestId = head.requestId;
  ex.headers = head.headers;
  if (head.hasBody) ex.body = req;
  ex.rest = checked.rest;

  const lease = service.tryAcquire();
  if (lease !== null) {
    ex.attachLease(lease);
    return;
  }
  if (service.config.waiting_page && service.state !== 'hot' && wantsWaitingPage(req)) {
    service.start('waiting_page', { byRequest: true });
    ex.waitingPage();
    return;
  }
  ex.waitForLease(service);
}

/**
 * The gateway's auth gate on the proxy (SPEC §8): one boolean on the hot path when auth is off;
 * when on, auth/http.ts decides and strips the gateway's own credentials before forwarding.
 */
export function authHooks(ctx: GatewayContext): ProxyHooks {
  return { authorize: (req, serviceId) => (ctx.auth.enabled ? gateProxyRequest(ctx.auth, req, serviceId) : undefined) };
}

/** `hooks` defaults to the gateway's auth (authHooks); tests pass their own. */
export function createProxyHandler(
  ctx: GatewayContext,
  observer?: ProxyObserver,
  hooks: ProxyHooks = authHooks(ctx),
): ProxyHandler {
  const core = new ProxyCore(ctx, observer ?? null, hooks);
  let closing: Promise<void> | undefined;
  return {
    handleRequest: (req, res) => handleRequest(core, req, res),
    handleUpgrade: (req, socket, head) => handleUpgrade(core, req, socket, head),
    forward: (opts) => forwardCollected(core, opts),
    report: (info) => core.report(info),
    timedRequests: () => core.deadlines.size,
    close() {
      closing ??= core.close();
      return closing;
    },
  };
}
