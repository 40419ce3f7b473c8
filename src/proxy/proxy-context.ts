/**
 * What every exchange, tunnel and dispatched request of one proxy handler shares: the gateway
 * context, the admission door (auth hook), the upstream pools, the upstream deadlines, the open
 * tunnels, and the report (the per-request log line and observer call).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HestiaError } from '../errors.ts';
import type { GatewayContext } from '../gateway-context.ts';
import type { Logger } from '../observability/logger.ts';
import type { Lease, ServiceHandle } from '../services/types.ts';
import type { Door } from './admission.ts';
import { Deadlines } from './deadlines.ts';
import { servicesPathDoor } from './path-door.ts';
import { UpstreamPools } from './upstream-pools.ts';

/** What the proxy reports once per request when it ends (metrics hang on this). */
export interface ProxyRequestInfo {
  request_id: string;
  /** null when the id in the path is not a configured service (never echo arbitrary ids into metrics). */
  service_id: string | null;
  method: string;
  /** Normalised route (`/services/{id}`), never the raw path or query. */
  route: string;
  /** Status sent to the client; 499 when the client left before a response started. */
  status: number;
  duration_ms: number;
  /** Request body bytes read from the client (both directions of a WebSocket: client → upstream). */
  bytes_in: number;
  /** Response body bytes written to the client. */
  bytes_out: number;
  /** ms the request waited for a cold start, or null on the hot path. */
  cold_start_ms: number | null;
  /** Origin of the upstream that answered (or failed last), or null if none was tried. */
  upstream: string | null;
  /** A HESTIA_* code, or CLIENT_CLOSED, when the exchange did not complete normally. */
  error: string | null;
  /** True for a WebSocket tunnel (logged when it closes, status 101). */
  websocket: boolean;
  /**
   * Why the routing strategy chose `upstream` (e.g. `model 'llama3' → by_model`); absent for a
   * service without a strategy. Only ever logged: it is free text (`→`, quotes), never a header.
   */
  route_reason?: string;
  /** The dispatcher only: the upstream's status, carried inside its 200 answer. */
  upstream_status?: number | null;
}

/** What a request knows when it ends: the exchange, the tunnel, a dispatched request (step 8, report). */
export interface EndedRequest {
  readonly requestId: string;
  /** null when no configured service was found. */
  readonly service: ServiceHandle | null;
  readonly method: string;
  /** performance.now() when it arrived. */
  readonly startedAt: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Origin of the upstream that answered (or failed last), or null if none was tried. */
  readonly upstream: string | null;
  readonly errorCode: string | null;
  readonly routeReason: string | null;
}

export interface ProxyObserver {
  /** Called exactly once per proxied request or tunnel, after it ended. Must not throw. */
  onRequestEnd(info: ProxyRequestInfo): void;
}

/**
 * Seams for colleagues' features.
 *
 * AUTH HOOK: `authorize` is called for every `/services/…` request and WebSocket upgrade after
 * the service is looked up and before anything is acquired or forwarded (admission.ts step 3),
 * also when the path names no configured service (`serviceId` undefined): that refusal (404,
 * listing the services) comes only after auth allowed the request. It answers:
 * - a HestiaError (e.g. HESTIA_UNAUTHORIZED): refused with it, nothing is forwarded;
 * - null: allowed, and the hook may have removed or rewritten the gateway's own credentials in
 *   `req.headers` (auth/request-guards.ts `gateProxyRequest` deletes X-API-Key, a gateway Bearer
 *   Authorization, and the session cookie). The proxy then forwards Authorization, Cookie and
 *   X-API-Key from `req.headers` (as the hook left them), everything else from the raw list;
 * - undefined: not checked (auth off): every header is forwarded from the raw list, and Node
 *   never has to build `req.headers` on the hot path.
 * Wiring on main (handler.ts `authHooks`): `(req, id) => (ctx.auth.enabled ? gateProxyRequest(ctx.auth, req, id) : undefined)`.
 */
export interface ProxyHooks {
  authorize?(req: IncomingMessage, serviceId: string | undefined): HestiaError | null | undefined;
}

export class ProxyContext {
  readonly pools = new UpstreamPools();
  /** Upstream header/body timeouts of every request in flight (one sweeping timer). */
  readonly deadlines = new Deadlines();
  /** Open WebSocket tunnels (client socket, upstream socket), destroyed by close(). */
  readonly tunnels = new Set<Duplex>();
  /** The admission door of `/services/{id}/…` requests and upgrades (path-door.ts), with `hooks`' auth. */
  readonly door: Door<IncomingMessage>;
  private readonly requestLog: Logger;

  constructor(
    readonly ctx: GatewayContext,
    readonly observer: ProxyObserver | null,
    readonly hooks: ProxyHooks,
  ) {
    this.door = servicesPathDoor(hooks);
    this.requestLog = ctx.log.child({ event_type: 'request' });
  }

  /**
   * Report an ended request (every door): `status` as sent to the client, `lease` the one it held
   * (cold-start time), `upstreamStatus` the dispatcher's upstream status inside its 200.
   */
  reportEnd(
    r: EndedRequest,
    route: string,
    status: number,
    lease: Lease | null,
    websocket: boolean,
    upstreamStatus?: number | null,
  ): void {
    const info: ProxyRequestInfo = {
      request_id: r.requestId,
      service_id: r.service?.id ?? null,
      method: r.method,
      route,
      status,
      duration_ms: Math.round((performance.now() - r.startedAt) * 1000) / 1000,
      bytes_in: r.bytesIn,
      bytes_out: r.bytesOut,
      cold_start_ms: lease?.coldStart ? Math.round(lease.waitedMs) : null,
      upstream: r.upstream,
      error: r.errorCode,
      websocket,
    };
    if (r.routeReason !== null) info.route_reason = r.routeReason;
    if (upstreamStatus !== undefined) info.upstream_status = upstreamStatus;
    this.report(info);
  }

  /** The one line per request, and the observer call. */
  report(info: ProxyRequestInfo): void {
    if (this.observer !== null) {
      try {
        this.observer.onRequestEnd(info);
      } catch (err) {
        this.ctx.log.error({ err, event_type: 'observer_error' }, 'proxy observer threw');
      }
    }
    this.requestLog.info(info, `${info.method} ${info.route} ${info.status}`);
  }

  async close(): Promise<void> {
    this.deadlines.stop();
    for (const s of this.tunnels) s.destroy();
    this.tunnels.clear();
    await this.pools.close();
  }
}
