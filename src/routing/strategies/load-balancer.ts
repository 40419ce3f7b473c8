/**
 * `load_balancer`: spread requests over `instances` by weight, skipping unhealthy ones.
 *
 * Smooth weighted round robin (nginx's algorithm): every healthy instance adds its weight to
 * its running score, the highest score wins (ties: config order) and pays back the total weight.
 * Over any window of `sum(weights)` requests each instance gets exactly its share, interleaved
 * rather than in bursts (weights 3:1 → a a b a, not a a a b). With all weights 1 (the default)
 * this is plain round robin.
 *
 * - No instances configured → `base_url` (a service can name the strategy before it has instances).
 * - Instances configured but all cooling down → `url: null` (502 HESTIA_NO_HEALTHY_INSTANCE).
 * State is the per-URL running score, so a config reload that adds or drops an instance keeps
 * the others' positions.
 */
import type { ServiceSnapshot, Strategy, StrategyDecision } from '../types.ts';

export interface LoadBalancerState {
  /** Running score per instance URL. */
  readonly scores: Map<string, number>;
}

export const loadBalancer: Strategy<LoadBalancerState> = {
  name: 'load_balancer',
  version: '1.0.0',
  features: ['round_robin', 'weighted', 'health_aware'],
  createState: () => ({ scores: new Map() }),
  select(_view, snapshot, _config, state): StrategyDecision {
    return pickWeighted(snapshot, state);
  },
};

export function pickWeighted(snapshot: ServiceSnapshot, state: LoadBalancerState): StrategyDecision {
  if (snapshot.instances.length === 0) return { url: snapshot.baseUrl, reason: 'no instances configured: base_url' };
  let total = 0;
  let best: { url: string; score: number } | null = null;
  for (const inst of snapshot.instances) {
    if (!inst.healthy) continue;
    total += inst.weight;
    const score = (state.scores.get(inst.url) ?? 0) + inst.weight;
    state.scores.set(inst.url, score);
    if (best === null || score > best.score) best = { url: inst.url, score };
  }
  if (best === null) {
    const n = snapshot.instances.length;
    return {
      url: null,
      reason: `all ${n} instance${n === 1 ? ' is' : 's are'} cooling down after connection failures`,
    };
  }
  state.scores.set(best.url, best.score - total);
  const skipped = snapshot.instances.length - snapshot.instances.filter((i) => i.healthy).length;
  return {
    url: best.url,
    reason: skipped === 0 ? 'weighted round robin' : `weighted round robin (${skipped} unhealthy skipped)`,
  };
}
