/**
 * The proxy entry points, mounted beside Fastify by server/app.ts: every `/services/…`
 * request and WebSocket upgrade comes here without passing through the control-plane router.
 *
 * Request flow (SPEC §4): admission (admission.ts, the same steps for every door: shutting down
 * → service lookup through the `/services/{id}` door (path-door.ts: method, id, path safety) →
 * auth hook → unknown service) → upstream headers → `new Exchange(…)` with everything it needs
 * → lease (admission.ts: hot path `tryAcquire()`, else the waiting page for a browser, else the
 * service's queue) → route → attempts → forward → report (exchange.ts, forward.ts).
 * WebSockets: websocket.ts; the dispatcher: server/routes/requests.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { gateOriginRequest, gateProxyRequest } from '../auth/request-guards.ts';
import type { ModelEndpoint } from '../config/model-endpoints.ts';
import { HestiaError } from '../errors.ts';
import type { GatewayContext } from '../gateway-context.ts';
import type { ProxyObserver } from '../observability/request-record.ts';
import { acquireLease, admit, type Door } from './admission.ts';
import { type ForwardedResponse, type ForwardOptions, forwardCollected } from './collected-forward.ts';
import { Exchange } from './exchange.ts';
import { buildUpstreamHeaders } from './headers.ts';
import { handleModelRequest, modelDoor } from './model-door.ts';
import type { ProxyHooks } from './path-door.ts';
import { ProxyContext } from './proxy-context.ts';
import { handleUpgrade } from './websocket.ts';

export type { ProxyObserver, ProxyRequestInfo } from '../observability/request-record.ts';
export type { ForwardedResponse, ForwardOptions } from './collected-forward.ts';
export type { ProxyHooks } from './path-door.ts';
export type { EndedRequest } from './proxy-context.ts';

export interface ProxyHandler {
  /** `door` defaults to `/services/{id}` (path-door.ts); host and port doors pass theirs (origin-doors.ts). */
  handleRequest(req: IncomingMessage, res: ServerResponse, door?: Door<IncomingMessage>): void;
  /** A request to a model endpoint (`POST /v1/chat/completions`, …; model-door.ts). */
  handleModelRequest(endpoint: ModelEndpoint, req: IncomingMessage, res: ServerResponse): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, door?: Door<IncomingMessage>): void;
  /** The door of a whole origin for one service (a host or a port door), built once per service and kind. */
  originDoor(serviceId: string, kind: 'host' | 'port'): Door<IncomingMessage>;
  /**
   * Forward one request for the dispatcher (`POST /v1/requests`) through the proxy's pools and
   * rules; the response comes back as a stream (collected-forward.ts). The caller holds the lease.
   */
  forward(opts: ForwardOptions): Promise<ForwardedResponse>;
  /**
   * Report a request that was proxied outside handleRequest (the dispatcher): the same one log
   * line and observer call (metrics) as every proxied request (ProxyContext.reportEnd).
   */
  reportEnd: ProxyContext['reportEnd'];
  /**
   * Requests whose upstream header/body timeout is running (deadlines.ts): 0 once traffic has
   * ended, whatever way each request ended. For tests and diagnostics.
   */
  timedRequests(): number;
  /** Destroy open WebSocket tunnels and close the upstream pools (shutdown). Idempotent. */
  close(): Promise<void>;
}

function handleRequest(pctx: ProxyContext, req: IncomingMessage, res: ServerResponse, door = pctx.door): void {
  const startedAt = performance.now();
  let ex: Exchange | null = null;
  try {
    const admitted = admit(pctx.ctx, door, req);
    if (admitted.error !== null) {
      Exchange.refused(pctx, req, res, admitted.service, admitted.error, startedAt, door.kind);
      return;
    }
    const head = buildUpstreamHeaders(req, pctx.ctx.config.server.trust_proxy, null, admitted.authed);
    ex = new Exchange(pctx, req, res, admitted.service, admitted.rest, head, startedAt);
    if (door.kind !== undefined) ex.door = door.kind;
    acquireLease(pctx.ctx.log, admitted.service, ex);
  } catch (err) {
    // A bug in a collaborator (auth hook, lifecycle) must cost one request, not the process.
    const internal = new HestiaError('HESTIA_INTERNAL', 'internal error in the gateway');
    pctx.ctx.log.error({ err, event_type: 'proxy_internal_error', request_id: ex?.requestId }, 'proxy failed');
    if (ex !== null) ex.reject(internal);
    else Exchange.refused(pctx, req, res, null, internal, startedAt);
  }
}

/**
 * The gateway's auth gate on the proxy (SPEC §8): one boolean on the hot path when auth is off;
 * when on, auth/request-guards.ts decides and strips the gateway's own credentials before forwarding.
 */
export function authHooks(ctx: GatewayContext): ProxyHooks {
  return {
    authorize: (req, serviceId) => (ctx.auth.enabled ? gateProxyRequest(ctx.auth, req, serviceId) : undefined),
    authorizeOrigin: (req, serviceId) =>
      ctx.auth.enabled ? gateOriginRequest(ctx.auth, req, serviceId, ctx.config.server.trust_proxy) : undefined,
  };
}

/** `hooks` defaults to the gateway's auth (authHooks); tests pass their own. */
export function createProxyHandler(
  ctx: GatewayContext,
  observer?: ProxyObserver,
  hooks: ProxyHooks = authHooks(ctx),
): ProxyHandler {
  const pctx = new ProxyContext(ctx, observer ?? null, hooks);
  const models = modelDoor(ctx);
  let closing: Promise<void> | undefined;
  return {
    handleRequest: (req, res, door) => handleRequest(pctx, req, res, door),
    handleModelRequest: (endpoint, req, res) => handleModelRequest(pctx, models, endpoint, req, res),
    handleUpgrade: (req, socket, head, door) => handleUpgrade(pctx, req, socket, head, door),
    originDoor: (serviceId, kind) => pctx.originDoor(serviceId, kind),
    forward: (opts) => forwardCollected(pctx, opts),
    reportEnd: (r, route, status, lease, websocket, upstreamStatus) =>
      pctx.reportEnd(r, route, status, lease, websocket, upstreamStatus),
    timedRequests: () => pctx.deadlines.size,
    close() {
      closing ??= pctx.close();
      return closing;
    },
  };
}
