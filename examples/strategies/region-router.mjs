// Example Hestia strategy plugin: route by region.
//
// Copy this file into your strategies directory (config `strategies_dir`, env
// HESTIA_STRATEGIES_DIR, default ./strategies) and use it from a service:
//
//   services:
//     ollama:
//       base_url: http://localhost:11434
//       strategy: region_router
//       instances:
//         - { url: "http://ollama-a:11434", region: "us-east" }
//         - { url: "http://ollama-b:11434", region: "us-west" }
//       routing:
//         region_header: x-region        # optional, this is the default
//
// A request with `X-Region: us-west` goes to a healthy us-west instance (round robin among
// them); without the header, or when no instance of that region is healthy, to any healthy
// instance; when none is healthy, Hestia answers 502 HESTIA_NO_HEALTHY_INSTANCE.
//
// The contract (types in `hestia-gateway/strategy`, src/routing/types.ts): export one function,
// `register`, returning the strategy. `select` is pure and synchronous: it may only change the
// `state` object that `createState` made for the service.

/** @type {import('hestia-gateway/strategy').RegisterStrategies} */
export function register(_api) {
  return {
    name: 'region_router',
    version: '1.0.0',
    features: ['health_aware', 'region_routing'],
    createState: () => ({ next: 0 }),
    select(view, snapshot, config, state) {
      const headerName = typeof config.routing.region_header === 'string' ? config.routing.region_header : 'x-region';
      const raw = view.headers[headerName.toLowerCase()];
      const wanted = Array.isArray(raw) ? raw[0] : raw;
      const healthy = snapshot.instances.filter((i) => i.healthy);
      if (snapshot.instances.length === 0) return { url: snapshot.baseUrl, reason: 'no instances: base_url' };
      if (healthy.length === 0) return { url: null, reason: 'no healthy instance in any region' };
      const local = wanted ? healthy.filter((i) => i.region === wanted) : [];
      const pool = local.length > 0 ? local : healthy;
      const pick = pool[state.next++ % pool.length];
      const why = local.length > 0 ? `region '${wanted}'` : wanted ? `no healthy instance in '${wanted}', any region` : 'no region asked, any region';
      return { url: pick.url, reason: why };
    },
  };
}
