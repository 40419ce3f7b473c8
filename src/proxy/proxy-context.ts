/**
 * What every exchange, tunnel and dispatched request of one proxy handler shares: the gateway
 * context, the admission door (auth hook), the upstream pools, the upstream deadlines, the open
 * tunnels, and the report (the per-request log line and observer call).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { GatewayContext } from '../gateway-context.ts';
import type { Logger } from '../observability/logger.ts';
import type { ProxyObserver, ProxyRequestInfo } from '../observability/request-record.ts';
import type { Lease, ServiceHandle } from '../services/types.ts';
import type { Door } from './admission.ts';
import { Deadlines } from './deadlines.ts';
import { originDoor } from './origin-doors.ts';
import { type ProxyHooks, servicesPathDoor } from './path-door.ts';
import { UpstreamPools } from './upstream-pools.ts';

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
  /** The door it came through (admission.ts `DoorKind`); absent for the dispatcher. */
  readonly door?: string;
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

  private readonly originDoors = new Map<string, Door<IncomingMessage>>();

  /** The host or port door of one service (origin-doors.ts), built once. */
  originDoor(serviceId: string, kind: 'host' | 'port'): Door<IncomingMessage> {
    const key = `${kind} ${serviceId}`;
    let door = this.originDoors.get(key);
    if (door === undefined) {
      door = originDoor(this.hooks, serviceId, kind);
      this.originDoors.set(key, door);
    }
    return door;
  }

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
    if (r.door !== undefined) info.door = r.door;
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
