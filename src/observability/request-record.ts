/**
 * The record of one request through any door (the proxy, a WebSocket tunnel, the dispatcher),
 * written once when it ends: the per-request log line and what metrics count. Defined here, at
 * the bottom, so metrics need not know the proxy; the proxy fills it (proxy/proxy-context.ts).
 */

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
  /** The door it came through (`path`, `host`, `port`; absent for the dispatcher): SPEC §10. */
  door?: string;
  /**
   * Why the routing strategy chose `upstream` (e.g. `model 'llama3' → by_model`); absent for a
   * service without a strategy. Only ever logged: it is free text (`→`, quotes), never a header.
   */
  route_reason?: string;
  /** The dispatcher only: the upstream's status, carried inside its 200 answer. */
  upstream_status?: number | null;
}

export interface ProxyObserver {
  /** Called exactly once per proxied request or tunnel, after it ended. Must not throw. */
  onRequestEnd(info: ProxyRequestInfo): void;
}
