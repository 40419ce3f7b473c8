/**
 * id → ServiceRuntime, built from the config: one runtime (state machine, queue, idle timer)
 * and one launcher per configured service. Also the gateway-wide lifecycle steps: re-adoption
 * at boot and the shutdown sequence (SPEC §1, §5). The placement is given (src/main.ts builds
 * the machines one); the registry never builds it.
 */

import { secretValues, textMasker } from '../config/mask.ts';
import type { Config, ServiceConfig } from '../config/schema.ts';
import { HestiaError } from '../errors.ts';
import { createLauncher, type LauncherFactories, launcherFactories } from '../launchers/launcher-factories.ts';
import type { Launcher } from '../launchers/types.ts';
import type { EventBus } from '../observability/events.ts';
import type { Logger } from '../observability/logger.ts';
import type { Store } from '../store/store.ts';
import type { Placement } from './placement.ts';
import type { PolicyClock } from './policy-clock.ts';
import { PolicyCoordinator } from './policy-coordinator.ts';
import { ServiceRuntime, type StateSink } from './service-runtime.ts';
import type { ServiceLookup } from './types.ts';

export interface RegistryOptions {
  config: Config;
  bus: EventBus;
  log: Logger;
  /** Durable state; null keeps everything in memory (tests of the runtime alone). */
  store?: Store | null;
  /**
   * Where services start: src/machines/ MachinePlacement (placement rules, capacity, wake/sleep)
   * in the gateway, built by src/main.ts with `services: () => registry.all()` for eviction;
   * `localPlacement` (placement.ts) in tests of the runtime alone. Closed at shutdown.
   */
  placement: Placement;
  factories?: LauncherFactories;
  /** Time source of keep-warm windows (tests move it by hand); default the real clock. */
  policyClock?: PolicyClock;
}

export class ServiceRegistry implements ServiceLookup {
  private readonly byId = new Map<string, ServiceRuntime>();
  /** Every launcher ever made (reloads add some), closed at shutdown. */
  private readonly launchers: Launcher[] = [];
  /** Services removed by a reload, still finishing (their stop). */
  private readonly retiring = new Set<Promise<void>>();
  private readonly store: Store | null;
  private readonly sink: StateSink | undefined;
  private readonly placement: Placement;
  /** Cross-service rules (preload, keep-warm, depends_on, group), decided in one place. */
  readonly policies: PolicyCoordinator;
  private _config: Config;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: RegistryOptions) {
    this._config = opts.config;
    this.store = opts.store ?? null;
    const store = this.store;
    this.sink = store
      ? {
          save: (row) => store.saveServiceState(row),
          touch: (id, at) => store.touchServiceState(id, at),
        }
      : undefined;
    this.placement = opts.placement;
    this.policies = new PolicyCoordinator({
      config: opts.config,
      member: (id) => this.byId.get(id),
      log: opts.log,
      clock: opts.policyClock,
    });
    for (const [id, svc] of Object.entries(opts.config.services)) this.byId.set(id, this.makeRuntime(id, svc));
  }

  /** The config the services were last built or reconfigured from. */
  get config(): Config {
    return this._config;
  }

  private makeLauncher(id: string, svc: ServiceConfig): Launcher {
    const launcher = createLauncher(
      svc.launcher,
      { serviceId: id, config: this._config, log: this.opts.log.child({ service_id: id }) },
      this.opts.factories ?? launcherFactories,
    );
    this.launchers.push(launcher);
    return launcher;
  }

  /** The output masker of the current config, built once per config (not once per service: O(n²)). */
  private maskerFor: { config: Config; mask: (text: string) => string } | undefined;

  private makeRuntime(id: string, svc: ServiceConfig): ServiceRuntime {
    if (this.maskerFor?.config !== this._config) {
      this.maskerFor = { config: this._config, mask: textMasker(secretValues(this._config)) };
    }
    const mask = this.maskerFor.mask;
    const deps = {
      bus: this.opts.bus,
      log: this.opts.log,
      placement: this.placement,
      sink: this.sink,
      mask,
      policy: this.policies,
    };
    return new ServiceRuntime(id, svc, { ...deps, launcher: this.makeLauncher(id, svc) });
  }

  /**
   * Apply a reloaded config (SPEC §3) without dropping in-flight or queued requests: existing
   * services take their new settings (ServiceRuntime.reconfigure; a changed `launcher` block
   * gets a new launcher for the next start), new services are added cold, and removed services
   * refuse new requests, fail their queued ones with 503, and are stopped like at shutdown.
   */
  reconfigure(config: Config): void {
    this._config = config;
    for (const [id, svc] of Object.entries(config.services)) {
      const rt = this.byId.get(id);
      if (!rt) {
        const created = this.makeRuntime(id, svc);
        this.byId.set(id, created);
        void created.restore(undefined);
        continue;
      }
      const launcherChanged = JSON.stringify(rt.config.launcher ?? null) !== JSON.stringify(svc.launcher ?? null);
      rt.reconfigure(svc, launcherChanged ? this.makeLauncher(id, svc) : undefined);
    }
    for (const [id, rt] of [...this.byId]) {
      if (id in config.services) continue;
      this.byId.delete(id);
      rt.beginShutdown(
        new HestiaError('HESTIA_START_FAILED', `service '${id}' was removed from the configuration`, {
          serviceId: id,
          attempts: 0,
          retry_after_ms: 0,
          reason: 'removed by a config reload',
        }),
      );
      const done = rt.finishShutdown().finally(() => this.retiring.delete(done));
      this.retiring.add(done);
    }
    this.policies.reconfigure(config);
  }

  get(id: string): ServiceRuntime | undefined {
    return this.byId.get(id);
  }

  ids(): string[] {
    return [...this.byId.keys()];
  }

  all(): ServiceRuntime[] {
    return [...this.byId.values()];
  }

  /** Re-adopt what the previous gateway left running (SPEC §5), all services in parallel. */
  async restore(): Promise<void> {
    const recorded = this.store?.loadServiceStates() ?? new Map();
    // Each restore writes its state row in its synchronous part: one commit for all of them.
    const restoring = () => this.all().map((rt) => rt.restore(recorded.get(rt.id)));
    await Promise.all(this.store ? this.store.batch(restoring) : restoring());
    // Policies act on what runs after re-adoption: preload, keep-warm windows already open.
    this.policies.boot();
  }

  /** Step 1 of shutdown: refuse new requests, fail queued ones with 503, abandon starts. */
  beginShutdown(): void {
    this.policies.close();
    for (const rt of this.byId.values()) rt.beginShutdown();
  }

  /** Step 2: wait for in-flight leases to be released, until `deadline` (epoch ms). */
  async drain(deadline: number): Promise<void> {
    await Promise.all(this.all().map((rt) => rt.drain(deadline)));
  }

  /** Step 3: stop local children, persist final states, release launcher resources. */
  async finishShutdown(): Promise<void> {
    await Promise.all([...this.all().map((rt) => rt.finishShutdown()), ...this.retiring]);
    // Sleep timers and machine waits end with the gateway.
    await this.placement.close?.();
    await Promise.all(this.launchers.map((l) => l.close?.().catch(() => {})));
  }

  /** The whole sequence with no drain wait (for callers that drained already). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.beginShutdown();
      await this.finishShutdown();
    })();
    return this.closing;
  }
}
