/**
 * id → ServiceRuntime, built from the config: one runtime (state machine, queue, idle timer)
 * and one launcher per configured service. Also the gateway-wide lifecycle steps: re-adoption
 * at boot and the shutdown sequence (SPEC §1, §5).
 */
import type { Config } from '../config/schema.ts';
import { createLauncher, type LauncherFactories, launcherFactories } from '../launchers/registry.ts';
import type { Launcher } from '../launchers/types.ts';
import type { EventBus } from '../observability/events.ts';
import type { Logger } from '../observability/logger.ts';
import type { Store } from '../store/store.ts';
import { localPlacement, type Placement } from './placement.ts';
import { ServiceRuntime, type StateSink } from './service-runtime.ts';
import type { ServiceLookup } from './types.ts';

export interface RegistryOptions {
  config: Config;
  bus: EventBus;
  log: Logger;
  /** Durable state; null keeps everything in memory (tests of the runtime alone). */
  store?: Store | null;
  placement?: Placement;
  factories?: LauncherFactories;
}

export class ServiceRegistry implements ServiceLookup {
  private readonly byId = new Map<string, ServiceRuntime>();
  private readonly launchers: Launcher[] = [];
  private readonly store: Store | null;
  private closing: Promise<void> | undefined;

  constructor(opts: RegistryOptions) {
    this.store = opts.store ?? null;
    const store = this.store;
    const sink: StateSink | undefined = store
      ? {
          save: (row) => store.saveServiceState(row),
          touch: (id, at) => store.touchServiceState(id, at),
        }
      : undefined;
    const placement = opts.placement ?? localPlacement(() => opts.config);
    for (const [id, svc] of Object.entries(opts.config.services)) {
      const launcher = createLauncher(
        svc.launcher,
        { serviceId: id, config: opts.config, log: opts.log.child({ service_id: id }) },
        opts.factories ?? launcherFactories,
      );
      this.launchers.push(launcher);
      this.byId.set(id, new ServiceRuntime(id, svc, { bus: opts.bus, log: opts.log, launcher, placement, sink }));
    }
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
    await Promise.all(this.all().map((rt) => rt.restore(recorded.get(rt.id))));
  }

  /** Step 1 of shutdown: refuse new requests, fail queued ones with 503, abandon starts. */
  beginShutdown(): void {
    for (const rt of this.byId.values()) rt.beginShutdown();
  }

  /** Step 2: wait for in-flight leases to be released, until `deadline` (epoch ms). */
  async drain(deadline: number): Promise<void> {
    await Promise.all(this.all().map((rt) => rt.drain(deadline)));
  }

  /** Step 3: stop local children, persist final states, release launcher resources. */
  async finishShutdown(): Promise<void> {
    await Promise.all(this.all().map((rt) => rt.finishShutdown()));
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
