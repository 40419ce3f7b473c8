/**
 * Per-service routing: the service's configured strategy + its state + instance health →
 * `decide(view, baseUrl)`. The gateway (proxy and dispatcher) calls `RoutingTable.routerFor(id)`
 * once per request; `null` means the service has no (usable) strategy and the request goes to
 * the lease's base URL untouched, so a plain service pays one Map lookup.
 *
 * Failure policy (a strategy can never take a request down):
 * - the strategy throws, returns a Promise, or returns anything but `{url, reason}` with an
 *   http(s) `url` (or `url: null`) → the request goes to `base_url`; a `strategy_error` warning
 *   is logged (at most one line per service per 10 s, with the count of suppressed ones);
 * - `url: null` → HestiaError HESTIA_NO_HEALTHY_INSTANCE (502, with each instance's remaining
 *   cooldown and a Retry-After for the soonest one);
 * - a service naming a strategy that is not loaded → a warning when the config is applied, and
 *   its requests go to `base_url`.
 */
import { maskSecrets, maskUrl } from '../config/mask.ts';
import type { Config, ServiceConfig } from '../config/schema.ts';
import { HestiaError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { type Clock, DEFAULT_COOLDOWN_MS, InstanceHealth } from './instance-health.ts';
import { loadStrategyPlugins, type PluginLoadResult } from './plugin-loader.ts';
import { describe, type LoadedStrategy, StrategyRegistry } from './strategy-registry.ts';
import type { AnyStrategy, RequestView, ServiceSnapshot, StrategyConfig } from './types.ts';

export const DEFAULT_BODY_CAP_BYTES = 1024 * 1024;
const ERROR_LOG_INTERVAL_MS = 10_000;

export interface RouteDecision {
  /** Upstream base URL to forward to. */
  url: string;
  reason: string;
  strategy: string;
  /** True when the strategy failed and `url` is the base URL by way of fallback. */
  strategyFailed: boolean;
}

/** The service's strategy settings with defaults applied (the schema's defaults apply only when `routing:` is present). */
export function strategyConfigOf(svc: ServiceConfig): StrategyConfig {
  const routing = svc.routing;
  return Object.freeze({
    strategy: svc.strategy ?? '',
    routing: Object.freeze({
      ...(routing ?? {}),
      model_key: routing?.model_key ?? 'model',
      by_model: Object.freeze({ ...(routing?.by_model ?? {}) }),
      body_cap_bytes: routing?.body_cap_bytes ?? DEFAULT_BODY_CAP_BYTES,
      cooldown_ms: routing?.cooldown_ms ?? DEFAULT_COOLDOWN_MS,
    }),
  });
}

export class ServiceRouter {
  readonly strategyName: string;
  /** The strategy declares `json_body`: read up to `bodyCapBytes` of the body before deciding. */
  readonly needsBody: boolean;
  readonly bodyCapBytes: number;
  readonly cooldownMs: number;
  private readonly strategy: AnyStrategy;
  private readonly config: StrategyConfig;
  private readonly state: unknown;
  private lastErrorLogAt = Number.NEGATIVE_INFINITY;
  private suppressedErrors = 0;

  constructor(
    readonly serviceId: string,
    private readonly svc: ServiceConfig,
    loaded: LoadedStrategy,
    readonly health: InstanceHealth,
    private readonly log: Logger,
  ) {
    this.strategy = loaded.strategy;
    this.strategyName = loaded.strategy.name;
    this.config = strategyConfigOf(svc);
    this.needsBody = loaded.strategy.features.includes('json_body');
    this.bodyCapBytes = this.config.routing.body_cap_bytes;
    this.cooldownMs = this.config.routing.cooldown_ms;
    // createState failing is a strategy failure like any other: the state is then undefined,
    // and select will most likely throw and fall back on every request (and say so in the log).
    try {
      this.state = this.strategy.createState?.(this.config);
    } catch (err) {
      this.state = undefined;
      this.logFailure(`createState threw: ${err instanceof Error ? err.message : describe(err)}`, true);
    }
  }

  /** The read-only snapshot a strategy sees. */
  snapshot(baseUrl: string): ServiceSnapshot {
    const now = this.health.now();
    return Object.freeze({
      serviceId: this.serviceId,
      baseUrl,
      instances: Object.freeze(this.health.snapshot(this.svc.instances, now).map((i) => Object.freeze(i))),
      now,
    });
  }

  /**
   * Decide the upstream for one request. `baseUrl` is the lease's resolved base URL.
   * Throws HestiaError HESTIA_NO_HEALTHY_INSTANCE when the strategy says no upstream can take it.
   */
  decide(view: RequestView, baseUrl: string): RouteDecision {
    const snapshot = this.snapshot(baseUrl);
    let out: unknown;
    try {
      out = this.strategy.select(view, snapshot, this.config, this.state);
    } catch (err) {
      return this.fallback(baseUrl, `select threw: ${err instanceof Error ? err.message : describe(err)}`);
    }
    const problem = decisionProblem(out);
    if (problem) return this.fallback(baseUrl, problem);
    const d = out as { url: string | null; reason?: unknown };
    const reason = typeof d.reason === 'string' ? d.reason : '(no reason given)';
    if (d.url === null) throw this.noUpstream(snapshot, reason);
    return { url: d.url, reason, strategy: this.strategyName, strategyFailed: false };
  }

  /** The proxy could not connect to `url`: skip it for the cooldown. */
  reportConnectFailure(url: string, error?: string): void {
    const until = this.health.markFailure(url, this.cooldownMs);
    this.log.warn(
      {
        event_type: 'instance_unhealthy',
        service_id: this.serviceId,
        instance: url,
        cooldown_ms: this.cooldownMs,
        until: new Date(until).toISOString(),
        ...(error ? { error } : {}),
      },
      `instance ${url} of '${this.serviceId}' failed to connect; skipped for ${this.cooldownMs} ms`,
    );
  }

  /** `url` answered (any status): healthy again. */
  reportResponse(url: string): void {
    this.health.markSuccess(url);
  }

  private fallback(baseUrl: string, problem: string): RouteDecision {
    this.logFailure(problem, false);
    return {
      url: baseUrl,
      reason: `strategy '${this.strategyName}' failed (${problem}): base_url`,
      strategy: this.strategyName,
      strategyFailed: true,
    };
  }

  private logFailure(problem: string, force: boolean): void {
    const now = this.health.now();
    if (!force && now - this.lastErrorLogAt < ERROR_LOG_INTERVAL_MS) {
      this.suppressedErrors++;
      return;
    }
    this.log.warn(
      {
        event_type: 'strategy_error',
        service_id: this.serviceId,
        strategy: this.strategyName,
        problem,
        suppressed: this.suppressedErrors,
      },
      `strategy '${this.strategyName}' failed for '${this.serviceId}': ${problem}; using base_url`,
    );
    this.lastErrorLogAt = now;
    this.suppressedErrors = 0;
  }

  private noUpstream(snapshot: ServiceSnapshot, reason: string): HestiaError {
    const waits = snapshot.instances.map((i) => ({
      url: i.url,
      cooldown_remaining_ms: i.cooldownUntil === null ? 0 : i.cooldownUntil - snapshot.now,
    }));
    const pending = waits.map((w) => w.cooldown_remaining_ms).filter((ms) => ms > 0);
    const headers: Record<string, string> =
      pending.length > 0 ? { 'retry-after': String(Math.max(1, Math.ceil(Math.min(...pending) / 1000))) } : {};
    return new HestiaError(
      'HESTIA_NO_HEALTHY_INSTANCE',
      `no healthy instance for service '${this.serviceId}': ${reason}`,
      { serviceId: this.serviceId, strategy: this.strategyName, instances: waits },
      headers,
    );
  }
}

/** Why `out` is not a decision, or null when it is. */
export function decisionProblem(out: unknown): string | null {
  if (out === null || typeof out !== 'object') return `select returned ${describe(out)}, expected {url, reason}`;
  if (typeof (out as { then?: unknown }).then === 'function')
    return 'select returned a Promise; strategies must decide synchronously';
  const url = (out as { url?: unknown }).url;
  if (url === null) return null;
  if (typeof url !== 'string') return `select returned url ${describe(url)}, expected a URL string or null`;
  if (!isHttpUrl(url)) return `select returned url ${describe(url)}, which is not an http(s) URL`;
  return null;
}

/**
 * `http://user:secret@host/?token=x` → `http://user:***@host/?token=***`: /v1/strategies must not
 * show credentials (config/mask.ts has the rules).
 */
export function redactUrl(url: string): string {
  return maskUrl(url);
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}

export interface RoutingTableOptions {
  /** The current config; read on every lookup so a reload is picked up. */
  getConfig: () => Config;
  log: Logger;
  clock?: Clock;
  /** Plugin import/register timeout. */
  pluginTimeoutMs?: number;
}

/** JSON shape of `GET /v1/strategies`. */
export interface StrategiesView {
  loaded_strategies: Record<string, { name: string; version: string; features: string[]; source: string }>;
  service_configurations: Record<
    string,
    {
      strategy: string | null;
      instances: Array<{
        url: string;
        weight: number;
        region?: string;
        healthy: boolean;
        cooldown_remaining_ms: number;
      }>;
      routing: Record<string, unknown> | null;
    }
  >;
}

/** All services' routers, rebuilt when the config object changes; instance health survives reloads. */
export class RoutingTable {
  readonly registry: StrategyRegistry;
  /** What happened to each plugin file at start. */
  readonly plugins: readonly PluginLoadResult[];
  private readonly healthById = new Map<string, InstanceHealth>();
  private builtFor: Config | null = null;
  private routers = new Map<string, ServiceRouter>();

  constructor(
    private readonly opts: RoutingTableOptions,
    registry: StrategyRegistry = new StrategyRegistry(),
    plugins: readonly PluginLoadResult[] = [],
  ) {
    this.registry = registry;
    this.plugins = plugins;
  }

  /** Built-ins + plugins from `config.strategies_dir` (never throws for a broken plugin). */
  static async create(opts: RoutingTableOptions): Promise<RoutingTable> {
    const registry = new StrategyRegistry();
    const config = opts.getConfig();
    const plugins = await loadStrategyPlugins(config.strategies_dir, registry, {
      log: opts.log,
      explicit: config.strategies_dir !== './strategies',
      ...(opts.pluginTimeoutMs !== undefined ? { timeoutMs: opts.pluginTimeoutMs } : {}),
    });
    return new RoutingTable(opts, registry, plugins);
  }

  /** The router for a service, or null when it has no strategy (or an unknown one): use the base URL. */
  routerFor(serviceId: string): ServiceRouter | null {
    const config = this.opts.getConfig();
    if (config !== this.builtFor) this.rebuild(config);
    return this.routers.get(serviceId) ?? null;
  }

  healthOf(serviceId: string): InstanceHealth {
    let h = this.healthById.get(serviceId);
    if (!h) {
      h = new InstanceHealth(this.opts.clock);
      this.healthById.set(serviceId, h);
    }
    return h;
  }

  describe(): StrategiesView {
    const config = this.opts.getConfig();
    const loaded: StrategiesView['loaded_strategies'] = {};
    for (const { strategy, source } of this.registry.list())
      loaded[strategy.name] = {
        name: strategy.name,
        version: strategy.version,
        features: [...strategy.features],
        source,
      };
    const services: StrategiesView['service_configurations'] = {};
    for (const [id, svc] of Object.entries(config.services)) {
      const health = this.healthOf(id);
      const now = health.now();
      services[id] = {
        strategy: svc.strategy ?? null,
        instances: health.snapshot(svc.instances, now).map((i) => ({
          url: redactUrl(i.url),
          weight: i.weight,
          ...(i.region !== null ? { region: i.region } : {}),
          healthy: i.healthy,
          cooldown_remaining_ms: i.cooldownUntil === null ? 0 : i.cooldownUntil - now,
        })),
        routing: svc.routing
          ? {
              ...maskSecrets(svc.routing),
              by_model: Object.fromEntries(Object.entries(svc.routing.by_model).map(([m, u]) => [m, redactUrl(u)])),
            }
          : null,
      };
    }
    return { loaded_strategies: loaded, service_configurations: services };
  }

  private rebuild(config: Config): void {
    const routers = new Map<string, ServiceRouter>();
    for (const [id, svc] of Object.entries(config.services)) {
      if (!svc.strategy) {
        if (svc.instances.length > 0)
          this.opts.log.warn(
            { event_type: 'strategy_config', service_id: id },
            `service '${id}' lists instances but no strategy; they are unused (set strategy: load_balancer)`,
          );
        continue;
      }
      const loaded = this.registry.get(svc.strategy);
      if (!loaded) {
        this.opts.log.warn(
          { event_type: 'strategy_config', service_id: id, strategy: svc.strategy },
          `service '${id}' uses strategy '${svc.strategy}', which is not loaded (loaded: ${this.registry
            .list()
            .map((l) => l.strategy.name)
            .join(', ')}); its requests go to base_url`,
        );
        continue;
      }
      routers.set(id, new ServiceRouter(id, svc, loaded, this.healthOf(id), this.opts.log));
    }
    this.routers = routers;
    this.builtFor = config;
  }
}
