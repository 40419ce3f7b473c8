/** Builders for pure strategy tests: views, snapshots and configs without a gateway. */
import type {
  BodyView,
  InstanceSnapshot,
  RequestView,
  ServiceSnapshot,
  StrategyConfig,
} from '../../src/routing/types.ts';

export function view(body: BodyView = { status: 'not_read' }, headers: RequestView['headers'] = {}): RequestView {
  return { method: 'POST', path: '/api/generate', headers, body };
}

export function jsonBody(value: unknown): BodyView {
  return { status: 'json', value };
}

export function inst(url: string, opts: Partial<InstanceSnapshot> = {}): InstanceSnapshot {
  return {
    url,
    weight: 1,
    region: null,
    healthy: true,
    cooldownUntil: null,
    consecutiveFailures: 0,
    ...opts,
  };
}

export function snap(instances: InstanceSnapshot[], baseUrl = 'http://base:1'): ServiceSnapshot {
  return { serviceId: 'svc', baseUrl, instances, now: 1_000 };
}

export function cfg(routing: Partial<StrategyConfig['routing']> = {}, strategy = 'x'): StrategyConfig {
  return {
    strategy,
    routing: { model_key: 'model', by_model: {}, body_cap_bytes: 1024 * 1024, cooldown_ms: 30_000, ...routing },
  };
}
