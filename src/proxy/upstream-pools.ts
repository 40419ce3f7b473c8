/**
 * One keep-alive undici Pool per upstream origin and connection limit, created on first use and
 * destroyed by `close()`. Base URLs are parsed once and cached by their string, so the hot path
 * does a Map lookup instead of a URL parse.
 *
 * ## Connection limit (`upstream_max_connections`)
 * Without a limit undici opens one connection per concurrent request: a cold start's queue of
 * 1,000 requests opened 490–900 connections at once and overflowed the upstream's listen
 * backlog (SYN retries add a second). With a limit, excess requests wait in the Pool's queue;
 * undici starts a request's headers timeout only when it is written to a socket, so waiting
 * there does not count against it. A request whose client left while it waited there is
 * dropped when its turn comes (the exchange aborts it in `onConnect`, before anything is sent).
 * Services sharing an origin but not a limit get separate pools, so each gets what it asked for.
 */
import { Pool } from '../http-client.ts';
import { basePathOf } from './target-path.ts';

export interface UpstreamTarget {
  /** `http://host:port`, also the key of the pool. */
  readonly origin: string;
  /** The base URL's path without trailing slash ('' or '/api'). */
  readonly basePath: string;
  /** `host:port` as the upstream expects it in `Host` (what undici sends). */
  readonly host: string;
  readonly hostname: string;
  readonly port: number;
  readonly secure: boolean;
  readonly pool: Pool;
}

/** How long an idle upstream connection is kept (undici lowers it to the upstream's hint). */
const KEEP_ALIVE_MS = 30_000;
/** A connect that takes longer is a connection failure (retried like a refusal). */
const CONNECT_TIMEOUT_MS = 10_000;

/** The default of `upstream_max_connections` (config/schema.ts), for callers without a service. */
export const DEFAULT_MAX_CONNECTIONS = 128;

export class UpstreamPools {
  /** Keyed by `<limit> <origin>`. */
  private readonly pools = new Map<string, Pool>();
  /** limit → base URL → target: two Map lookups on the hot path, no key string built. */
  private readonly targets = new Map<number, Map<string, UpstreamTarget>>();
  private closed = false;

  /**
   * The target for a base URL, whose pool opens at most `maxConnections` connections (0 = no
   * limit); throws a TypeError on an unparsable URL.
   */
  target(baseUrl: string, maxConnections = DEFAULT_MAX_CONNECTIONS): UpstreamTarget {
    let byUrl = this.targets.get(maxConnections);
    if (byUrl === undefined) {
      byUrl = new Map();
      this.targets.set(maxConnections, byUrl);
    }
    const cached = byUrl.get(baseUrl);
    if (cached !== undefined) return cached;
    const url = new URL(baseUrl);
    const secure = url.protocol === 'https:';
    const t: UpstreamTarget = {
      origin: url.origin,
      basePath: basePathOf(url),
      host: url.host,
      hostname: url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname,
      port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
      secure,
      pool: this.pool(url.origin, maxConnections),
    };
    // Base URLs come from config (a handful); bound the cache anyway against a strategy that
    // would produce many distinct ones.
    if (byUrl.size >= 1024) byUrl.clear();
    byUrl.set(baseUrl, t);
    return t;
  }

  private pool(origin: string, maxConnections: number): Pool {
    const key = `${maxConnections} ${origin}`;
    let p = this.pools.get(key);
    if (p === undefined) {
      if (this.closed) throw new Error('upstream pools are closed');
      p = new Pool(origin, {
        // null = unlimited for undici.
        connections: maxConnections > 0 ? maxConnections : null,
        keepAliveTimeout: KEEP_ALIVE_MS,
        keepAliveMaxTimeout: KEEP_ALIVE_MS,
        connect: { timeout: CONNECT_TIMEOUT_MS },
        // Per-request timeouts are set per service on each dispatch; these only apply to
        // requests that do not set them (none do).
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.pools.set(key, p);
    }
    return p;
  }

  /** Number of open pools (tests). */
  get size(): number {
    return this.pools.size;
  }

  /**
   * Destroy every pool: called once the HTTP server has stopped, so whatever is still open
   * upstream has no client any more.
   */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.pools.values()];
    this.pools.clear();
    this.targets.clear();
    await Promise.all(all.map((p) => p.destroy().catch(() => {})));
  }
}
