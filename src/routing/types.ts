/**
 * The routing-strategy API: everything a strategy (built in or plugin) sees and returns.
 * Exported to plugin authors as `hestia-gateway/strategy` (package.json "exports"; shipped as
 * dist/routing/types.d.ts by scripts/build.mjs, which fails if this file holds anything but
 * types), so `import type { Strategy } from 'hestia-gateway/strategy'` costs nothing at runtime.
 *
 * Contract in one paragraph: a strategy is a pure, synchronous function. For every request to
 * a service whose config names it (`strategy: <name>`), the gateway calls
 * `select(view, snapshot, config, state)` and forwards the request to `decision.url` (a base
 * URL: the request path is appended to it, exactly as for `base_url`). A strategy does no I/O,
 * never awaits and never blocks; the only thing it may mutate is the `state` object the gateway
 * created for it with `createState()` (one per service, e.g. a round-robin position). The
 * gateway applies the decision, tracks instance health, and owns every failure: a strategy
 * that throws or returns something that is not a decision sends the request to the service's
 * `base_url` (and is logged), so a broken strategy can never take a request down.
 *
 * A plugin is a `.js`/`.mjs` ES module in the strategies directory (config `strategies_dir`,
 * env `HESTIA_STRATEGIES_DIR`, default `./strategies`) that exports one function,
 * `register` (or a default export), of type `RegisterStrategies`:
 *
 * ```js
 * // strategies/first-healthy.mjs
 * export function register(api) {
 *   return {
 *     name: 'first_healthy',
 *     version: '1.0.0',
 *     features: ['health_aware'],
 *     select(view, snapshot) {
 *       const up = snapshot.instances.find((i) => i.healthy);
 *       return up ? { url: up.url, reason: 'first healthy instance' } : { url: null, reason: 'all instances cooling down' };
 *     },
 *   };
 * }
 * ```
 */

/** Version of this API; bumped on an incompatible change. Passed to `register` as `api.apiVersion`. */
export type StrategyApiVersion = 1;

/**
 * Feature flags a strategy declares. The gateway acts on exactly one of them:
 * `json_body` — the strategy reads the request's JSON body, so the gateway buffers up to
 * `routing.body_cap_bytes` of it (default 1 MiB) before deciding, then forwards the very same
 * bytes. Without it, `view.body` is `{ status: 'not_read' }` and bodies stream untouched.
 * Any other string is informational (listed by `GET /v1/strategies`), e.g. `weighted`.
 */
export type StrategyFeature =
  | 'json_body'
  | 'round_robin'
  | 'weighted'
  | 'health_aware'
  | 'model_routing'
  | (string & {});

/**
 * The request body as a strategy sees it.
 * - `json`: the whole body was read (within the cap) and parsed; `value` is the parsed JSON.
 * - `empty`: the request has no body.
 * - `not_json`: the body was read but is not valid JSON (routing must not fail because of it).
 * - `too_large`: the body is larger than the cap; it was not parsed.
 * - `not_read`: the strategy does not declare `json_body`, so the gateway did not read it.
 */
export type BodyView =
  | { readonly status: 'json'; readonly value: unknown }
  | { readonly status: 'empty' | 'not_json' | 'too_large' | 'not_read' };

/** What a strategy knows about the request. Read-only; mutating it has no effect. */
export interface RequestView {
  /** Upper-case method, e.g. `POST`. */
  readonly method: string;
  /** The path below the service (`/api/generate` for `/services/ollama/api/generate`), raw query included. */
  readonly path: string;
  /** Request headers, names lower-case (node:http's shape). Hestia's own API key is already removed. */
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly body: BodyView;
}

/** One configured instance and its health as the gateway sees it right now. */
export interface InstanceSnapshot {
  /** The instance's base URL, as configured. */
  readonly url: string;
  /** Configured weight (> 0; default 1). */
  readonly weight: number;
  readonly region: string | null;
  /**
   * False while the instance is cooling down after a failure to connect. Once the cooldown
   * ends it is healthy again (and tried again); a new failure starts a new cooldown.
   */
  readonly healthy: boolean;
  /** Epoch ms at which the current cooldown ends; null when healthy. */
  readonly cooldownUntil: number | null;
  /** Connection failures in a row (0 after any successful connection). */
  readonly consecutiveFailures: number;
}

/** A read-only picture of the service at the moment of the decision. */
export interface ServiceSnapshot {
  readonly serviceId: string;
  /** The service's resolved `base_url` (machine placement applied). */
  readonly baseUrl: string;
  /** `instances` from the config, in config order, with health. May be empty. */
  readonly instances: readonly InstanceSnapshot[];
  /** The clock the snapshot was taken at (epoch ms). Use this, not `Date.now()`, to stay pure. */
  readonly now: number;
}

/** The service's strategy configuration. */
export interface StrategyConfig {
  /** The `strategy` value that selected this strategy. */
  readonly strategy: string;
  /**
   * The service's `routing` block with defaults applied (`model_key: 'model'`, `by_model: {}`,
   * `body_cap_bytes: 1048576`, `cooldown_ms: 30000`); extra keys a plugin documents are kept.
   */
  readonly routing: Readonly<Record<string, unknown>> & {
    readonly model_key: string;
    readonly by_model: Readonly<Record<string, string>>;
    readonly body_cap_bytes: number;
    readonly cooldown_ms: number;
  };
}

/**
 * A strategy's answer. `url` is the upstream base URL to forward to (http:// or https://).
 * `url: null` means "no upstream can take this request now" and becomes a 502
 * `HESTIA_NO_HEALTHY_INSTANCE` carrying `reason`. `reason` is a short human sentence that ends
 * up in logs (`route_reason`), e.g. `model 'llama3' → by_model`.
 */
export type StrategyDecision =
  | { readonly url: string; readonly reason: string }
  | { readonly url: null; readonly reason: string };

/**
 * A routing strategy. `S` is the type of its per-service state (nothing, by default).
 *
 * Methods (not arrow properties) on purpose: TypeScript then lets a `Strategy<{n: number}>`
 * be stored where a `Strategy<unknown>` is expected.
 */
export interface Strategy<S = undefined> {
  /** Unique name, what a service's `strategy:` refers to: letters, digits, `_`, `-`, `.`. */
  readonly name: string;
  /** The strategy's own version (semver recommended), shown by `GET /v1/strategies`. */
  readonly version: string;
  readonly features: readonly StrategyFeature[];
  /**
   * Create the state for one service (called once per service and config generation).
   * The gateway passes it back to every `select` for that service. Omit for stateless strategies.
   */
  createState?(config: StrategyConfig): S;
  /**
   * Decide where one request goes. Synchronous, no I/O; may only mutate `state`.
   * Throwing, returning a Promise, or returning a non-decision is treated as a strategy failure:
   * the request goes to `base_url` and the failure is logged.
   */
  select(view: RequestView, snapshot: ServiceSnapshot, config: StrategyConfig, state: S): StrategyDecision;
}

/** What `register` receives. */
export interface StrategyPluginApi {
  readonly apiVersion: StrategyApiVersion;
  /** Log through the gateway's logger (lines are tagged with the plugin file). */
  readonly log: {
    info(msg: string, details?: Record<string, unknown>): void;
    warn(msg: string, details?: Record<string, unknown>): void;
  };
}

/**
 * The one function a plugin module exports (as `register` or as its default export). It returns
 * the strategies the plugin provides, or a Promise of them. It runs once, at start; it may do
 * I/O (read a file), but must settle within the loader's timeout (5 s by default).
 */
export type RegisterStrategies = (
  api: StrategyPluginApi,
) => AnyStrategy | readonly AnyStrategy[] | Promise<AnyStrategy | readonly AnyStrategy[]>;

/** A strategy with whatever state type (what registries store). */
export type AnyStrategy = Strategy<unknown>;
