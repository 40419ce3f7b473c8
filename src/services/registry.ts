/**
 * id → service runtime. PLACEHOLDER until the lifecycle lands: every service is always hot
 * at its base_url (the shape the proxy and routes code against is ServiceLookup/ServiceHandle).
 */
import type { Config, ServiceConfig } from '../config/schema.ts';
import type { Lease, ServiceHandle, ServiceLookup, ServiceStatus } from './types.ts';

class AlwaysHotService implements ServiceHandle {
  readonly state = 'hot' as const;
  constructor(
    readonly id: string,
    readonly config: ServiceConfig,
  ) {}
  tryAcquire(): Lease {
    return {
      baseUrl: this.config.base_url,
      fallbackUrl: this.config.fallback_url ?? null,
      waitedMs: 0,
      coldStart: false,
      touch() {},
      release() {},
    };
  }
  async acquire(): Promise<Lease> {
    return this.tryAcquire();
  }
  start(): boolean {
    return false;
  }
  stop(): boolean {
    return false;
  }
  status(): ServiceStatus {
    return {
      serviceId: this.id,
      state: 'hot',
      readiness: 'ready',
      machineId: 'local',
      queuePending: 0,
      inflight: 0,
      lastUsedAt: null,
      startedAt: null,
      idleTimeoutMs: this.config.idle_timeout_ms,
    };
  }
}

export class ServiceRegistry implements ServiceLookup {
  private readonly byId = new Map<string, ServiceHandle>();
  constructor(config: Config) {
    for (const [id, svc] of Object.entries(config.services)) this.byId.set(id, new AlwaysHotService(id, svc));
  }
  get(id: string): ServiceHandle | undefined {
    return this.byId.get(id);
  }
  ids(): string[] {
    return [...this.byId.keys()];
  }
  async close(): Promise<void> {}
}
