/**
 * One keep-alive undici Pool per upstream origin, created on first use and destroyed by
 * `close()`. Base URLs are parsed once and cached by their string, so the hot path does a Map
 * lookup instead of a URL parse.
 */
import { Pool } from 'undici';
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

export class UpstreamPools {
  private readonly pools = new Map<string, Pool>();
  private readonly targets = new Map<string, UpstreamTarget>();
  private closed = false;

  /** The target for a base URL; throws a TypeError on an unparsable URL. */
  target(baseUrl: string): UpstreamTarget {
    const cached = this.targets.get(baseUrl);
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
      pool: this.pool(url.origin),
    };
    // Base URLs come from config (a handful); bound the cache anyway against a strategy that
    // would produce many distinct ones.
    if (this.targets.size >= 1024) this.targets.clear();
    this.targets.set(baseUrl, t);
    return t;
  }

  private pool(origin: string): Pool {
    let p = this.pools.get(origin);
    if (p === undefined) {
      if (this.closed) throw new Error('upstream pools are closed');
      p = new Pool(origin, {
        keepAliveTimeout: KEEP_ALIVE_MS,
        keepAliveMaxTimeout: KEEP_ALIVE_MS,
        connect: { timeout: CONNECT_TIMEOUT_MS },
        // Per-request timeouts are set per service on each dispatch; these only apply to
        // requests that do not set them (none do).
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.pools.set(origin, p);
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
