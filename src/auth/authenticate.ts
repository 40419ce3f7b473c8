/**
 * The one place requests are authenticated. The proxy (for `/services/*` and upgrades) and the
 * Fastify hook (for `/v1/*`, `/metrics`, …) both call `authenticate()`; neither parses keys or
 * decides policy itself.
 *
 * Contract of `authenticate(headers, remoteAddress, path, serviceId?)`:
 * - reads the key from `X-API-Key` or `Authorization: Bearer` (api-keys.ts);
 * - a blocked client address gets 429 HESTIA_TOO_MANY_REQUESTS before its key is even looked at;
 * - no key → 401 (not counted as a failure: nothing was guessed); a wrong, malformed or revoked
 *   key → 401 and one failure for the address's rate limit; a valid key outside its scope → 403
 *   HESTIA_FORBIDDEN (not a failure either);
 * - every refusal publishes one `auth_denied` event `{reason, client, path}` — never the key,
 *   never a header value, never the query string (it can carry tokens);
 * - on success the key's `last_used_at` is noted and `{ok: true, keyName}` returned.
 * It is synchronous and does no I/O beyond one indexed SQLite read (see key-store.ts).
 */
import { modelEndpoint } from '../config/model-endpoints.ts';
import type { Config } from '../config/schema.ts';
import { HestiaError } from '../errors.ts';
import type { EventBus } from '../observability/events.ts';
import { bearerToken, digestsEqual, type HeaderBag, hashApiKey, type KeySource, readPresentedKey } from './api-keys.ts';
import type { StoredKey } from './key-store.ts';
import { bucketOf, ConcurrencyGate, FailureLimiter, type RateLimitOptions } from './rate-limit.ts';
import { SESSION_COOKIE, SessionStore, withoutCookie } from './session.ts';

/** Why a request was refused: the `reason` of `auth_denied` events and the metric label. */
export type DenyReason =
  | 'missing_key'
  | 'invalid_key'
  | 'revoked_key'
  | 'forbidden'
  | 'blocked'
  | 'no_session'
  | 'bad_login'
  | 'csrf';

export type AuthOutcome =
  | {
      ok: true;
      /** Name of the key (or the dashboard user, for `via: 'session'`). Not a secret. */
      keyName: string;
      via: 'api_key' | 'session';
      /** Which header carried the key (api_key only). */
      source?: KeySource;
      /** Services the key may use; null = all. */
      services: readonly string[] | null;
    }
  | { ok: false; error: HestiaError; reason: DenyReason };

/** The subset of KeyStore the authenticator needs (a SQLite store, or nothing before it exists). */
export interface KeyLookup {
  findByDigest(sha256: string): StoredKey | undefined;
  touch(sha256: string): void;
}

export interface AuthenticatorOptions {
  /** The current config (read on every call: reload replaces it). */
  config: () => Config;
  bus: EventBus;
  /** Keys created by `hestia keys create`; null when no store is open. */
  keys?: KeyLookup | null;
  /** Injected clock for the limiters and sessions (tests). */
  now?: () => number;
  rateLimit?: RateLimitOptions;
  /** Called when a key-store write fails (last-used bookkeeping must never fail a request). */
  onStoreError?: (err: unknown) => void;
}

export interface AuthMetricsSnapshot {
  /** Refusals since start, by reason (429s while blocked count as `blocked`). */
  denied: Record<DenyReason, number>;
  /** Client addresses (or IPv6 /64s) blocked right now, API keys and login together. */
  blockedAddresses: number;
}

interface ConfigKey {
  name: string;
  sha256: string;
  services: string[] | null;
}

export class Authenticator {
  readonly #config: () => Config;
  readonly #bus: EventBus;
  readonly #keys: KeyLookup | null;
  readonly #onStoreError: (err: unknown) => void;
  /** Failures with API keys, per client address. */
  readonly keyLimiter: FailureLimiter;
  /** Failed dashboard logins, per client address (separate, so a broken script does not lock the owner out). */
  readonly loginLimiter: FailureLimiter;
  /**
   * Dashboard logins running at once. scrypt costs ~32 MiB and tens of ms per check, so at most
   * MAX_CONCURRENT_LOGINS run together, and at most MAX_CONCURRENT_LOGINS_PER_ADDRESS for one
   * address, so one client cannot hold every slot; further attempts get 429 at once.
   */
  readonly loginGate = new ConcurrencyGate(MAX_CONCURRENT_LOGINS, MAX_CONCURRENT_LOGINS_PER_ADDRESS);
  readonly sessions: SessionStore;
  readonly #denied: Record<DenyReason, number> = {
    missing_key: 0,
    invalid_key: 0,
    revoked_key: 0,
    forbidden: 0,
    blocked: 0,
    no_session: 0,
    bad_login: 0,
    csrf: 0,
  };
  readonly #eventGate: EventGate;
  #configKeysSource: Config['auth']['api_keys'] | undefined;
  #configKeys = new Map<string, ConfigKey>();

  constructor(opts: AuthenticatorOptions) {
    this.#config = opts.config;
    this.#bus = opts.bus;
    this.#keys = opts.keys ?? null;
    this.#onStoreError = opts.onStoreError ?? (() => {});
    const limiterOpts = { ...opts.rateLimit, ...(opts.now ? { now: opts.now } : {}) };
    this.keyLimiter = new FailureLimiter(limiterOpts);
    this.loginLimiter = new FailureLimiter(limiterOpts);
    this.sessions = new SessionStore(opts.now ? { now: opts.now } : {});
    this.#eventGate = new EventGate(opts.now ?? Date.now);
  }

  /** The one boolean the hot path checks. */
  get enabled(): boolean {
    return this.#config().auth.enabled;
  }

  /**
   * The address a rate limit and an `auth_denied` event are about: the socket's peer, or, when
   * `server.trust_proxy` is on, the right-most `X-Forwarded-For` entry (the one our trusted
   * proxy appended; entries left of it are client-supplied and could be forged).
   */
  clientAddress(headers: HeaderBag, remoteAddress: string | undefined): string {
    if (this.#config().server.trust_proxy) {
      const xff = headers['x-forwarded-for'];
      const text = Array.isArray(xff) ? xff.join(',') : xff;
      const last = text?.split(',').pop()?.trim();
      if (last) return last;
    }
    return remoteAddress ?? 'unknown';
  }

  authenticate(headers: HeaderBag, remoteAddress: string | undefined, path: string, serviceId?: string): AuthOutcome {
    const client = this.clientAddress(headers, remoteAddress);
    const presented = readPresentedKey(headers);
    if (presented.kind === 'none') return this.deny('missing_key', client, path);

    const check = this.keyLimiter.check(client);
    if (check.blocked) return this.#blocked(check.retryAfterMs);

    const digest = presented.kind === 'key' ? hashApiKey(presented.key) : '';
    const found = digest ? this.#lookup(digest) : undefined;
    if (!found || found.revoked) {
      const reason: DenyReason = found?.revoked ? 'revoked_key' : 'invalid_key';
      const r = this.keyLimiter.fail(client);
      const extra: Record<string, unknown> = found ? { keyName: found.name } : {};
      if (r.blocked) extra.blockedForMs = r.retryAfterMs;
      return this.deny(reason, client, path, extra);
    }
    this.keyLimiter.succeed(client);
    if (!scopeAllows(found.services, path, serviceId)) {
      return this.deny('forbidden', client, path, { keyName: found.name, ...(serviceId ? { serviceId } : {}) });
    }
    if (found.stored) {
      try {
        this.#keys?.touch(digest);
      } catch (err) {
        this.#onStoreError(err);
      }
    }
    return { ok: true, keyName: found.name, via: 'api_key', source: presented.source, services: found.services };
  }

  /**
   * Remove the gateway's credentials from headers about to be forwarded upstream (mutates).
   * - `X-API-Key` always goes.
   * - `Authorization` goes only when it carried a gateway key — the one that authenticated this
   *   request (`outcome.source`), or any other key this gateway knows — so an upstream that needs
   *   its own `Authorization` (Basic, or a bearer token of its own) still receives it.
   * - The dashboard session cookie goes from `Cookie` (it is `Path=/`, so a browser sends it to
   *   `/services/*` too; an upstream must never see it). Other cookies stay.
   */
  stripGatewayCredentials(headers: Record<string, string | string[] | undefined>, outcome?: AuthOutcome): void {
    delete headers['x-api-key'];
    const cookie = headers.cookie;
    if (cookie !== undefined) {
      const kept = withoutCookie(cookie, SESSION_COOKIE);
      if (kept === '') delete headers.cookie;
      else headers.cookie = kept;
    }
    const auth = headers.authorization;
    if (auth === undefined) return;
    if (outcome?.ok && outcome.source === 'authorization') {
      delete headers.authorization;
      return;
    }
    const token = bearerToken(auth);
    if (token !== null && token.length > 0 && this.#lookup(hashApiKey(token)) !== undefined)
      delete headers.authorization;
  }

  /**
   * Record a refusal: count it, publish `auth_denied` (client, path without query, reason and
   * the given non-secret details; at most EVENTS_PER_WINDOW per address per window, the next
   * one after a quiet spell says how many were `suppressed`), and build the error response. Also used by the dashboard
   * routes for failed logins, missing sessions and CSRF refusals.
   */
  deny(
    reason: DenyReason,
    client: string,
    path: string,
    extra: Record<string, unknown> = {},
  ): AuthOutcome & { ok: false } {
    this.#denied[reason]++;
    const suppressed = this.#eventGate.admit(client);
    if (suppressed !== null) {
      this.#bus.publish('auth_denied', typeof extra.serviceId === 'string' ? extra.serviceId : null, {
        reason,
        client,
        path: path.split('?')[0],
        ...extra,
        ...(suppressed > 0 ? { suppressed } : {}),
      });
    }
    return { ok: false, reason, error: errorFor(reason) };
  }

  /** A request refused because its address is blocked: counted, but no event per request
   * (the event was published when the block began), so a flood cannot flood the log. */
  #blocked(retryAfterMs: number): AuthOutcome & { ok: false } {
    this.#denied.blocked++;
    return { ok: false, reason: 'blocked', error: blockedError(retryAfterMs) };
  }

  /** 429 for an address whose logins are blocked (used by the login route). */
  blockedLogin(retryAfterMs: number): HestiaError {
    this.#denied.blocked++;
    return blockedError(retryAfterMs);
  }

  metrics(): AuthMetricsSnapshot {
    return {
      denied: { ...this.#denied },
      blockedAddresses: this.keyLimiter.blockedCount() + this.loginLimiter.blockedCount(),
    };
  }

  #lookup(digest: string): { name: string; services: string[] | null; revoked: boolean; stored: boolean } | undefined {
    const fromConfig = this.#configKeyMap().get(digest);
    if (fromConfig && digestsEqual(fromConfig.sha256, digest))
      return { name: fromConfig.name, services: fromConfig.services, revoked: false, stored: false };
    const stored = this.#keys?.findByDigest(digest);
    if (stored && digestsEqual(stored.sha256, digest))
      return { name: stored.name, services: stored.services, revoked: stored.revokedAt !== null, stored: true };
    return undefined;
  }

  /** digest → config key, rebuilt only when a reload replaced `auth.api_keys`. */
  #configKeyMap(): Map<string, ConfigKey> {
    const list = this.#config().auth.api_keys;
    if (list !== this.#configKeysSource) {
      this.#configKeysSource = list;
      this.#configKeys = new Map(
        list.map((k) => [
          k.sha256.toLowerCase(),
          { name: k.name, sha256: k.sha256.toLowerCase(), services: k.services ?? null },
        ]),
      );
    }
    return this.#configKeys;
  }
}

/** auth_denied events per client address per window; beyond it they are counted, not published. */
/** Dashboard logins (scrypt checks) at once, in total and from one address (see `loginGate`). */
export const MAX_CONCURRENT_LOGINS = 4;
export const MAX_CONCURRENT_LOGINS_PER_ADDRESS = 1;

export const EVENTS_PER_WINDOW = 10;
const EVENT_WINDOW_MS = 60_000;
const EVENT_GATE_MAX_ADDRESSES = 10_000;

/**
 * Keeps requests without a key (which the failure limiter does not slow: nothing was guessed)
 * from turning into one log line and one stored event each: a flood from one address would
 * otherwise fill the log and push real lifecycle events out of the store's retention window.
 * Memory is bounded like the limiter's (oldest address dropped first).
 */
class EventGate {
  readonly #windows = new Map<string, { start: number; count: number; suppressed: number }>();
  constructor(private readonly now: () => number) {}

  /** null = do not publish; otherwise publish, reporting this many suppressed since the last one. */
  admit(client: string): number | null {
    const key = bucketOf(client);
    const now = this.now();
    let w = this.#windows.get(key);
    if (!w || now - w.start >= EVENT_WINDOW_MS) {
      const suppressed = w?.suppressed ?? 0;
      if (w) this.#windows.delete(key);
      else if (this.#windows.size >= EVENT_GATE_MAX_ADDRESSES) {
        const oldest = this.#windows.keys().next();
        if (!oldest.done) this.#windows.delete(oldest.value);
      }
      w = { start: now, count: 0, suppressed };
      this.#windows.set(key, w);
    }
    if (w.count >= EVENTS_PER_WINDOW) {
      w.suppressed++;
      return null;
    }
    w.count++;
    const reported = w.suppressed;
    w.suppressed = 0;
    return reported;
  }
}

/**
 * May a key limited to `services` make this request? Unscoped keys may do anything. A scoped key
 * may use its services through the proxy, `/v1/services/{id}/…` for them, and `POST /v1/requests`
 * (whose body's `serviceId` the route checks against the same list), the model endpoints (whose
 * door checks the body's model's service against the same list), and the model lists
 * (`/v1/models…`, `/api/tags`, which show it only its services' models); everything else —
 * listings of all services, events, metrics — is refused: a scoped key sees only what it was given.
 */
export function scopeAllows(services: readonly string[] | null, path: string, serviceId?: string): boolean {
  if (services === null) return true;
  if (serviceId !== undefined) return services.includes(serviceId);
  const p = path.split('?')[0] ?? '';
  if (p === '/v1/requests' || p === '/v1/models' || p.startsWith('/v1/models/') || p === '/api/tags') return true;
  // The model endpoints: the model door checks the body's model's service against the key's.
  if (modelEndpoint(p) !== undefined) return true;
  const m = /^\/v1\/services\/([^/]+)(?:\/|$)/.exec(p);
  if (m) {
    try {
      return services.includes(decodeURIComponent(m[1]!));
    } catch {
      return false;
    }
  }
  return false;
}

const MESSAGES: Record<DenyReason, string> = {
  missing_key: 'authentication required: send an API key in X-API-Key or Authorization: Bearer',
  // One sentence for wrong and revoked keys: the difference is for the operator (in the event),
  // not for whoever holds the key.
  invalid_key: 'invalid API key',
  revoked_key: 'invalid API key',
  forbidden: 'this API key may not use this service',
  blocked: 'too many failed attempts from this address; try again later',
  no_session: 'authentication required: log in at /ui/login or send an API key',
  bad_login: 'wrong username or password',
  csrf: 'cross-origin request refused',
};

function errorFor(reason: DenyReason): HestiaError {
  if (reason === 'forbidden') return new HestiaError('HESTIA_FORBIDDEN', MESSAGES.forbidden);
  if (reason === 'csrf') return new HestiaError('HESTIA_FORBIDDEN', MESSAGES.csrf);
  return new HestiaError('HESTIA_UNAUTHORIZED', MESSAGES[reason], {}, { 'www-authenticate': 'Bearer realm="hestia"' });
}

function blockedError(retryAfterMs: number): HestiaError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new HestiaError(
    'HESTIA_TOO_MANY_REQUESTS',
    MESSAGES.blocked,
    { retry_after_ms: retryAfterMs },
    {
      'retry-after': String(seconds),
    },
  );
}
