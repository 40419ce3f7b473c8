/**
 * The JSON view of the metrics (`GET /v1/metrics`, `GET /v1/services/{id}/metrics`), in the
 * original Hestia's shape so that existing scripts keep working:
 *
 * ```
 * { counters:   { "<name>[k=v,…]": {count, timestamp} },
 *   gauges:     { "<name>[k=v,…]": {value, timestamp} },
 *   timers:     { "<name>": {count, total_ms, avg_ms, min_ms, max_ms, p50, p95, p99, timestamp} },
 *   histograms: { "<name>": {count, window, p50, p95, p99, timestamp} },
 *   services:   { "<id>": {state, counters, gauges, timers, histograms} } }
 * ```
 *
 * Keys are the Prometheus family names without the `hestia_` prefix, with their labels (except
 * `service`, which is the grouping) sorted inside brackets, as the original built them
 * (`requests_total[method=GET,route=/services/{id},status_class=2xx]`). Top-level entries are
 * the sums over every service (and over requests for unknown ids); `services` lists the configured
 * services that have had a request or a lifecycle event, or are not cold now (metrics.ts: cost
 * follows use) — the top-level `services_total` and `services[state=…]` still count them all.
 * `GET /v1/services/{id}/metrics` answers for any configured service (zeros for an unused one). Timer percentiles are over the last WINDOW samples (timing.ts); count, total,
 * min and max are exact over the gateway's life.
 */
import { type Cell, type GatewayMetrics, type ServiceGauges, ServiceSeries, STATES } from './metrics.ts';
import { type HistogramJson, iso, type SampleStats, type TimerJson } from './timing.ts';

export interface CounterJson {
  count: number;
  timestamp: string | null;
}

export interface GaugeJson {
  value: number;
  timestamp: string;
}

export interface ServiceMetricsJson {
  /** The service's lifecycle state now (an addition to the original's shape). */
  state: string;
  counters: Record<string, CounterJson>;
  gauges: Record<string, GaugeJson>;
  timers: Record<string, TimerJson>;
  histograms: Record<string, HistogramJson>;
}

export interface MetricsJson {
  counters: Record<string, CounterJson>;
  gauges: Record<string, GaugeJson>;
  timers: Record<string, TimerJson>;
  histograms: Record<string, HistogramJson>;
  services: Record<string, ServiceMetricsJson>;
}

/** JSON key of a series: family without `hestia_`, then `[k=v,…]` (sorted) when labelled. */
export function jsonKey(family: string, labels: Record<string, string>): string {
  const name = family.startsWith('hestia_') ? family.slice('hestia_'.length) : family;
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return name;
  return `${name}[${keys.map((k) => `${k}=${labels[k]}`).join(',')}]`;
}

/** The timers and histograms of one set of statistics (a service's, or the gateway's). */
function timings(t: {
  duration: SampleStats;
  queueWait: SampleStats;
  coldStart: SampleStats;
  requestSize: SampleStats;
  responseSize: SampleStats;
}): Pick<MetricsJson, 'timers' | 'histograms'> {
  return {
    timers: {
      proxy_duration_ms: t.duration.toTimerJson(),
      queue_wait_time_ms: t.queueWait.toTimerJson(),
      service_startup_duration_ms: t.coldStart.toTimerJson(),
    },
    histograms: {
      request_size_bytes: t.requestSize.toHistogramJson(),
      response_size_bytes: t.responseSize.toHistogramJson(),
    },
  };
}

function addCell(into: Record<string, CounterJson>, key: string, cell: Cell): void {
  const prev = into[key];
  if (prev === undefined) {
    into[key] = { count: cell.count, timestamp: iso(cell.at) };
    return;
  }
  prev.count += cell.count;
  const at = iso(cell.at);
  if (at !== null && (prev.timestamp === null || at > prev.timestamp)) prev.timestamp = at;
}

function serviceCounters(s: ServiceSeries): Record<string, CounterJson> {
  const out: Record<string, CounterJson> = {};
  let total: Cell = { count: 0, at: 0 };
  s.forEachCounter((family, labels, cell) => {
    addCell(out, jsonKey(family, labels), cell);
    if (family === 'hestia_requests_total')
      total = { count: total.count + cell.count, at: Math.max(total.at, cell.at) };
  });
  // The plain total, which the labelled keys would otherwise make every client sum itself.
  addCell(out, 'requests_total', total);
  return out;
}

/** One configured service's metrics (also the body of `GET /v1/services/{id}/metrics`). */
export function serviceMetricsJson(
  m: GatewayMetrics,
  id: string,
  all: Map<string, ServiceGauges> = m.gauges(),
): ServiceMetricsJson {
  // An unused service gets an empty series for this answer only: reading creates nothing.
  const s = m.existingSeries(id) ?? new ServiceSeries(id);
  const g = all.get(id);
  const now = new Date().toISOString();
  const gauges: Record<string, GaugeJson> = {
    inflight_requests: { value: g?.inflight ?? 0, timestamp: now },
    queued_requests: { value: g?.queued ?? 0, timestamp: now },
  };
  for (const st of STATES) gauges[`service_state[state=${st}]`] = { value: g?.state === st ? 1 : 0, timestamp: now };
  return { state: g?.state ?? 'cold', counters: serviceCounters(s), gauges, ...timings(s) };
}

/** The whole gateway (`GET /v1/metrics`). */
export function metricsJson(m: GatewayMetrics, authDenied?: Record<string, number>): MetricsJson {
  const all = m.gauges();
  const ids = new Set(all.keys());
  const services: Record<string, ServiceMetricsJson> = {};
  for (const [id, g] of all) if (m.isActive(id, g)) services[id] = serviceMetricsJson(m, id, all);

  const counters: Record<string, CounterJson> = {};
  for (const s of m.allSeries()) {
    const own = Object.hasOwn(services, s.id) ? services[s.id]!.counters : serviceCounters(s);
    for (const [key, c] of Object.entries(own)) {
      const prev = counters[key];
      if (prev === undefined) counters[key] = { ...c };
      else {
        prev.count += c.count;
        if (c.timestamp !== null && (prev.timestamp === null || c.timestamp > prev.timestamp))
          prev.timestamp = c.timestamp;
      }
    }
  }
  const now = new Date().toISOString();
  if (authDenied) {
    for (const [reason, n] of Object.entries(authDenied)) {
      counters[jsonKey('hestia_auth_denied_total', { reason })] = { count: n, timestamp: null };
    }
  }

  const gauges: Record<string, GaugeJson> = {
    services_total: { value: ids.size, timestamp: now },
    inflight_requests: { value: 0, timestamp: now },
    queued_requests: { value: 0, timestamp: now },
  };
  for (const st of STATES) gauges[`services[state=${st}]`] = { value: 0, timestamp: now };
  for (const g of all.values()) {
    gauges.inflight_requests!.value += g.inflight;
    gauges.queued_requests!.value += g.queued;
    gauges[`services[state=${g.state}]`]!.value++;
  }
  return { counters, gauges, ...timings(m.global), services };
}
