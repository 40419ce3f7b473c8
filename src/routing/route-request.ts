/**
 * The one seam between the proxy and routing, ready for the proxy to call after the lease is
 * acquired and before forwarding:
 *
 * ```ts
 * const routed = await routeRequest(ctx.routing, serviceId, lease.baseUrl, { method, path, headers, body: req });
 * const upstreamBase = routed?.url ?? lease.baseUrl;   // null: no strategy, nothing changed
 * const body = routed?.body ?? req;                     // the exact client bytes either way
 * // on a connect failure to upstreamBase: routed?.connectFailed(err) (cools it down), and for
 * // the next attempt routed.next() picks again (another instance, or throws 502 when none is left)
 * // on any upstream response: routed?.answered()
 * ```
 *
 * For a service without a strategy this returns null after one Map lookup: no body is read,
 * no object allocated. The body is read only when the strategy declares `json_body` and the
 * request has a body, up to `routing.body_cap_bytes`.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { readBodyForRouting, requestHasBody } from './json-body-peek.ts';
import type { RouteDecision, RoutingTable } from './router.ts';
import type { BodyView, RequestView } from './types.ts';

export interface RoutableRequest {
  method: string;
  /** Path below the service, raw query included. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The client's body stream (read only for `json_body` strategies). */
  body: AsyncIterable<unknown>;
}

export interface RoutedRequest {
  /** The upstream base URL chosen for the current attempt. */
  readonly url: string;
  readonly decision: RouteDecision;
  /** Bytes to forward when the strategy read the body (same bytes as the client sent); else undefined. */
  readonly body: Buffer | Readable | undefined;
  /** The upstream at `url` could not be connected to: cool it down. */
  connectFailed(error?: unknown): void;
  /** The upstream at `url` answered (any status): healthy. */
  answered(): void;
  /**
   * Decide again for a retry after `connectFailed` (the failed instance is cooling down, so a
   * load balancer picks another). Updates `url`/`decision`. Throws HestiaError
   * HESTIA_NO_HEALTHY_INSTANCE when no instance is left.
   */
  next(): string;
}

/**
 * Route one request. Returns null when the service has no strategy. Throws HestiaError
 * HESTIA_NO_HEALTHY_INSTANCE (502) when the strategy finds no upstream, and rejects when the
 * client's body stream fails while being read (the client went away).
 */
export async function routeRequest(
  routing: RoutingTable,
  serviceId: string,
  baseUrl: string,
  req: RoutableRequest,
): Promise<RoutedRequest | null> {
  const router = routing.routerFor(serviceId);
  if (router === null) return null;
  let bodyView: BodyView = { status: 'not_read' };
  let body: Buffer | Readable | undefined;
  if (router.needsBody) {
    if (requestHasBody(req.headers)) {
      const read = await readBodyForRouting(req.body, router.bodyCapBytes);
      bodyView = read.view;
      body = read.forward;
    } else bodyView = { status: 'empty' };
  }
  const view: RequestView = Object.freeze({
    method: req.method.toUpperCase(),
    path: req.path,
    headers: req.headers,
    body: bodyView,
  });
  let decision = router.decide(view, baseUrl);
  return {
    get url() {
      return decision.url;
    },
    get decision() {
      return decision;
    },
    body,
    connectFailed(error?: unknown) {
      router.reportConnectFailure(decision.url, error instanceof Error ? error.message : undefined);
    },
    answered() {
      router.reportResponse(decision.url);
    },
    next() {
      decision = router.decide(view, baseUrl);
      return decision.url;
    },
  };
}
