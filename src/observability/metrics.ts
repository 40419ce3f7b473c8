/**
 * Gateway metrics (SPEC §9, issue 4): one `GatewayMetrics` per gateway instance, fed by the
 * proxy's observer (one call per request) and by the lifecycle event bus, read by `GET /metrics`
 * (Prometheus text, prom-client) and `GET /v1/metrics` (the original's JSON shape, json-metrics.ts).
 *
 * Design:
 * - Own `Registry` per instance (prom-client's default registry is process-global and tests run
 *   several gateways in one process).
 * - The hot path touches only plain numbers: per service, a typed array of request counts indexed
 *   by (method, status class) per route, byte sums, and ring-buffer timings (timing.ts). Counters
 *   and gauges are copied into prom-client in `collect()` at scrape time, so a request builds no
 *   label strings and hashes nothing for them. The three histograms are prom-client Histograms
 *   observed through a label child cached per service (prom-client hashes the one-label set on
 *   each observe; that is the only per-request cost inside prom-client).
 * - Cost follows use, not configuration: a service's series (its counters, timings and histogram
 *   buckets) are created the first time something happens to it — a request, or a lifecycle
 *   event of its own (a start, a stop, an adoption, …). A configured service that never saw any
 *   has no series at all, and its gauges are exported only once it leaves `cold` (or has a
 *   series), so a scrape of 2,000 idle services is a few lines, not 2,000 × 30.
 * - Labels are bounded by construction: `service` is a configured id or `_unknown` (the proxy
 *   reports `service_id: null` for ids that are not configured); `method` is one of 7 methods or
 *   `OTHER`; `status_class` is 1xx…5xx or `other`; `route` is the proxy's normalised route (at most
 *   MAX_ROUTES distinct per service, then `other`); `code` is an error code from the catalogue (at
 *   most MAX_CODES distinct per service, then `other`); `result`/`cause`/`state`/`reason` come
 *   from fixed lists. Raw paths, query strings and unknown ids never become label values.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { SERVICE_STATES, type ServiceState } from '../lifecycle-states.ts';
import { BucketHistogram } from './bucket-histogram.ts';
import type { HestiaEvent } from './events.ts';
import type { ProxyObserver, ProxyRequestInfo } from './request-record.ts';
import { SampleStats } from './timing.ts';

/** Label value for requests whose service id is not configured. */
export const UNKNOWN_SERVICE = '_unknown';
export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'OTHER'] as const;
export const STATUS_CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;
export const STATES: readonly ServiceState[] = SERVICE_STATES;
/** Distinct routes per service before further ones are counted as `other`. */
export const MAX_ROUTES = 8;
/** Distinct error codes per service before further ones are counted as `other`. */
export const MAX_CODES = 32;

const N_METHODS = METHODS.length;
const N_CLASSES = STATUS_CLASSES.length;

export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
export const WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
export const COLD_START_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 900];

function methodIndex(method: string): number {
  switch (method) {
    case 'GET':
      return 0;
    case 'HEAD':
      return 1;
    case 'POST':
      return 2;
    case 'PUT':
      return 3;
    case 'PATCH':
      return 4;
    case 'DELETE':
      return 5;
    case 'OPTIONS':
      return 6;
    default:
      return 7;
  }
}

function classIndex(status: number): number {
  const c = Math.floor(status / 100);
  return c >= 1 && c <= 5 ? c : 0;
}

/** A counter cell: value and the time of its last change (the JSON view's `timestamp`). */
export interface Cell {
  count: number;
  at: number;
}

/**
 * Lifecycle and proxy counters that are not per request, by Prometheus family. Each entry's
 * labels (besides `service`) are fixed, so the set of series is fixed per service.
 */
export const LIFECYCLE_COUNTERS = {
  startSuccess: { family: 'hestia_service_starts_total', labels: { result: 'success' } },
  startFailure: { family: 'hestia_service_starts_total', labels: { result: 'failure' } },
  startCancelled: { family: 'hestia_service_starts_total', labels: { result: 'cancelled' } },
  stopIdle: { family: 'hestia_service_stops_total', labels: { cause: 'idle' } },
  stopApi: { family: 'hestia_service_stops_total', labels: { cause: 'api' } },
  stopShutdown: { family: 'hestia_service_stops_total', labels: { cause: 'shutdown' } },
  stopEvicted: { family: 'hestia_service_stops_total', labels: { cause: 'evicted' } },
  machineFailovers: { family: 'hestia_machine_failovers_total', labels: {} },
  idleShutdowns: { family: 'hestia_idle_shutdowns_total', labels: {} },
  crashes: { family: 'hestia_service_crashes_total', labels: {} },
  adoptions: { family: 'hestia_service_adoptions_total', labels: {} },
  queueRejections: { family: 'hestia_queue_rejections_total', labels: {} },
  queueTimeouts: { family: 'hestia_queue_timeouts_total', labels: {} },
  proxyRetries: { family: 'hestia_proxy_retries_total', labels: {} },
  proxyFallbacks: { family: 'hestia_proxy_fallbacks_total', labels: {} },
} as const satisfies Record<string, { family: string; labels: Record<string, string> }>;
export type LifecycleCounter = keyof typeof LIFECYCLE_COUNTERS;
const LIFECYCLE_KEYS = Object.keys(LIFECYCLE_COUNTERS) as LifecycleCounter[];

const NO_OBSERVER = { observe(_v: number): void {} };

/** Per route: request counts and last-change times, indexed `method * N_CLASSES + class`. */
class RequestCells {
  readonly counts = new Float64Array(N_METHODS * N_CLASSES);
  readonly at = new Float64Array(N_METHODS * N_CLASSES);
}

/** Everything counted for one service (or for `_unknown`). */
export class ServiceSeries {
  readonly routes = new Map<string, RequestCells>();
  readonly errors = new Map<string, Cell>();
  readonly lifecycle: Record<LifecycleCounter, Cell>;
  readonly bytesIn: Cell = { count: 0, at: 0 };
  readonly bytesOut: Cell = { count: 0, at: 0 };
  readonly duration = new SampleStats();
  readonly queueWait = new SampleStats();
  readonly coldStart = new SampleStats();
  readonly requestSize = new SampleStats();
  readonly responseSize = new SampleStats();
  /** prom-client histogram children, bound to this service's label once. */
  readonly promDuration: { observe(v: number): void };
  readonly promQueueWait: { observe(v: number): void };
  readonly promColdStart: { observe(v: number): void };

  /**
   * `hist` absent: a read-only empty series (what the JSON view shows for a service that never
   * saw any activity), registered nowhere.
   */
  constructor(
    readonly id: string,
    hist?: { duration: BucketHistogram; queueWait: BucketHistogram; coldStart: BucketHistogram },
  ) {
    this.lifecycle = Object.fromEntries(LIFECYCLE_KEYS.map((k) => [k, { count: 0, at: 0 }])) as Record<
      LifecycleCounter,
      Cell
    >;
    this.promDuration = hist ? hist.duration.labels(id) : NO_OBSERVER;
    this.promQueueWait = hist ? hist.queueWait.labels(id) : NO_OBSERVER;
    this.promColdStart = hist ? hist.coldStart.labels(id) : NO_OBSERVER;
  }

  /** The cells of a route (bounded: past MAX_ROUTES, `other`). */
  cells(route: string): RequestCells {
    let c = this.routes.get(route);
    if (c === undefined) {
      const key = this.routes.size < MAX_ROUTES ? route : 'other';
      c = this.routes.get(key);
      if (c === undefined) {
        c = new RequestCells();
        this.routes.set(key, c);
      }
    }
    return c;
  }

  countError(code: string, now: number): void {
    let cell = this.errors.get(code);
    if (cell === undefined) {
      const key = this.errors.size < MAX_CODES && /^[A-Z][A-Z0-9_]{0,63}$/.test(code) ? code : 'other';
      cell = this.errors.get(key);
      if (cell === undefined) {
        cell = { count: 0, at: 0 };
        this.errors.set(key, cell);
      }
    }
    cell.count++;
    cell.at = now;
  }

  bump(which: LifecycleCounter, now: number, by = 1): void {
    const cell = this.lifecycle[which];
    cell.count += by;
    cell.at = now;
  }

  /**
   * Every counter series of this service as (family, labels without `service`, cell). Request
   * cells with a zero count are skipped (only combinations that happened are exported).
   */
  forEachCounter(cb: (family: string, labels: Record<string, string>, cell: Cell) => void): void {
    for (const [route, cells] of this.routes) {
      for (let m = 0; m < N_METHODS; m++) {
        for (let c = 0; c < N_CLASSES; c++) {
          const i = m * N_CLASSES + c;
          const count = cells.counts[i]!;
          if (count === 0) continue;
          cb(
            'hestia_requests_total',
            { route, method: METHODS[m]!, status_class: STATUS_CLASSES[c]! },
            { count, at: cells.at[i]! },
          );
        }
      }
    }
    for (const [code, cell] of this.errors) cb('hestia_proxy_errors_total', { code }, cell);
    // Requests for unknown ids are refused before anything is forwarded: only the two above apply.
    if (this.id === UNKNOWN_SERVICE) return;
    cb('hestia_proxy_bytes_total', { direction: 'in' }, this.bytesIn);
    cb('hestia_proxy_bytes_total', { direction: 'out' }, this.bytesOut);
    for (const k of LIFECYCLE_KEYS) {
      const def = LIFECYCLE_COUNTERS[k];
      cb(def.family, def.labels, this.lifecycle[k]);
    }
  }
}

/**
 * What metrics read of the services at scrape time: the lifecycle's ServiceLookup has this
 * shape, and metrics need no more of it.
 */
export interface ServiceGaugeSource {
  ids(): readonly string[];
  get(id: string): { load(): ServiceGauges } | undefined;
}

export interface MetricsSources {
  /** The current services (read at scrape time; a reload may change them). */
  services: () => ServiceGaugeSource;
  /** Refusal counts from auth (auth.metrics()), when auth exists. */
  authMetrics?: () => { denied: Record<string, number>; blockedAddresses: number };
  /** Configured machine ids: the only values the `machine` label may take. */
  machineIds?: () => Record<string, unknown>;
}

/** A snapshot of one service's gauges, read at scrape time. */
export interface ServiceGauges {
  state: ServiceState;
  inflight: number;
  queued: number;
}

export class GatewayMetrics implements ProxyObserver {
  readonly registry = new Registry();
  private readonly byId = new Map<string, ServiceSeries>();
  /** Gateway-wide timings (the JSON view's top-level timers: one window across all services). */
  readonly global = {
    duration: new SampleStats(),
    queueWait: new SampleStats(),
    coldStart: new SampleStats(),
    requestSize: new SampleStats(),
    responseSize: new SampleStats(),
  };
  private readonly hist: {
    duration: BucketHistogram;
    queueWait: BucketHistogram;
    coldStart: BucketHistogram;
  };

  constructor(private readonly sources: MetricsSources) {
    const registers = [this.registry];
    // One observation per proxied request: a BucketHistogram, not prom-client's Histogram
    // (bucket-histogram.ts says why); exposed through the same registry.
    this.hist = {
      duration: new BucketHistogram(
        'hestia_proxy_duration_seconds',
        'Time from a proxied request arriving to its response ending (WebSocket tunnels excluded), seconds.',
        DURATION_BUCKETS,
        this.registry,
      ),
      queueWait: new BucketHistogram(
        'hestia_queue_wait_seconds',
        'Time a proxied request waited in the queue for its service to start, seconds.',
        WAIT_BUCKETS,
        this.registry,
      ),
      coldStart: new BucketHistogram(
        'hestia_cold_start_duration_seconds',
        'Time from a start beginning to the service being ready, seconds.',
        COLD_START_BUCKETS,
        this.registry,
      ),
    };

    // Counter families, filled from the series at scrape time.
    const families: Record<string, { help: string; labels: string[] }> = {
      hestia_requests_total: {
        help: 'Proxied requests by service, normalised route, method and status class.',
        labels: ['service', 'route', 'method', 'status_class'],
      },
      hestia_proxy_errors_total: {
        help: 'Proxied requests that did not complete normally, by error code.',
        labels: ['service', 'code'],
      },
      hestia_proxy_bytes_total: {
        help: 'Body bytes proxied (in: from clients, out: to clients).',
        labels: ['service', 'direction'],
      },
      hestia_service_starts_total: { help: 'Finished starts by result.', labels: ['service', 'result'] },
      hestia_service_stops_total: { help: 'Stops begun, by cause.', labels: ['service', 'cause'] },
      hestia_idle_shutdowns_total: { help: 'Stops because the service was idle.', labels: ['service'] },
      hestia_service_crashes_total: { help: 'Launched services that exited on their own.', labels: ['service'] },
      hestia_service_adoptions_total: {
        help: 'Already running upstreams adopted as hot (boot or status probe).',
        labels: ['service'],
      },
      hestia_queue_rejections_total: { help: 'Requests refused because the queue was full.', labels: ['service'] },
      hestia_queue_timeouts_total: {
        help: 'Queued requests that waited request_timeout_seconds.',
        labels: ['service'],
      },
      hestia_proxy_retries_total: {
        help: 'Forwarding attempts retried after a connection failure.',
        labels: ['service'],
      },
      hestia_proxy_fallbacks_total: { help: 'Requests sent to fallback_url.', labels: ['service'] },
      hestia_machine_failovers_total: {
        help: 'Starts that moved on to the next machine of the placement list.',
        labels: ['service'],
      },
    };
    for (const [name, def] of Object.entries(families)) {
      const self = this;
      new Counter({
        name,
        help: def.help,
        labelNames: def.labels,
        registers,
        collect() {
          this.reset();
          self.forEachCounter(name, (labels, value) => this.inc(labels, value));
        },
      });
    }

    const self = this;
    new Gauge({
      name: 'hestia_inflight_requests',
      help: 'Requests being forwarded now.',
      labelNames: ['service'],
      registers,
      collect() {
        this.reset();
        for (const [id, g] of self.activeGauges()) this.set({ service: id }, g.inflight);
      },
    });
    new Gauge({
      name: 'hestia_queued_requests',
      help: 'Requests waiting in the queue now.',
      labelNames: ['service'],
      registers,
      collect() {
        this.reset();
        for (const [id, g] of self.activeGauges()) this.set({ service: id }, g.queued);
      },
    });
    new Gauge({
      name: 'hestia_service_state',
      help: 'Lifecycle state: 1 for the current state, 0 for the others.',
      labelNames: ['service', 'state'],
      registers,
      collect() {
        this.reset();
        for (const [id, g] of self.activeGauges()) {
          for (const s of STATES) this.set({ service: id, state: s }, g.state === s ? 1 : 0);
        }
      },
    });
    new Counter({
      name: 'hestia_auth_denied_total',
      help: 'Requests refused by authentication, by reason.',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        const m = self.sources.authMetrics?.();
        if (m) for (const [reason, n] of Object.entries(m.denied)) this.inc({ reason }, n);
      },
    });
    // Machine power actions, by machine (configured ids only) and result.
    for (const [name, help, cells] of [
      ['hestia_machine_wakes_total', 'Wake actions run before a start, by machine and result.', this.wakes],
      [
        'hestia_machine_sleeps_total',
        'Sleep actions run after a machine went idle, by machine and result.',
        this.sleeps,
      ],
    ] as const) {
      new Counter({
        name,
        help,
        labelNames: ['machine', 'result'],
        registers,
        collect() {
          this.reset();
          for (const [key, n] of cells) {
            const [machine, result] = key.split('\0') as [string, string];
            this.inc({ machine, result }, n);
          }
        },
      });
    }
    new Gauge({
      name: 'hestia_auth_blocked_addresses',
      help: 'Client addresses currently blocked after repeated authentication failures.',
      registers,
      collect() {
        this.set(self.sources.authMetrics?.().blockedAddresses ?? 0);
      },
    });
  }

  /** The series of a service id (null = an id that is not configured). Created on first use. */
  series(id: string | null): ServiceSeries {
    const key = id ?? UNKNOWN_SERVICE;
    let s = this.byId.get(key);
    if (s === undefined) {
      s = new ServiceSeries(key, this.hist);
      this.byId.set(key, s);
    }
    return s;
  }

  /** The series of a service if it has one (something happened to it), else undefined. */
  existingSeries(id: string): ServiceSeries | undefined {
    return this.byId.get(id);
  }

  /** Existing series (configured services seen so far, and `_unknown`). */
  allSeries(): IterableIterator<ServiceSeries> {
    return this.byId.values();
  }

  /** ProxyObserver: once per proxied request or WebSocket tunnel. Must not throw. */
  onRequestEnd(info: ProxyRequestInfo): void {
    const s = this.series(info.service_id);
    const now = Date.now();
    const cells = s.cells(info.route);
    const i = methodIndex(info.method) * N_CLASSES + classIndex(info.status);
    cells.counts[i]!++;
    cells.at[i] = now;
    if (info.bytes_in > 0) {
      s.bytesIn.count += info.bytes_in;
      s.bytesIn.at = now;
    }
    if (info.bytes_out > 0) {
      s.bytesOut.count += info.bytes_out;
      s.bytesOut.at = now;
    }
    if (info.error !== null) s.countError(info.error, now);
    if (info.service_id === null) return;
    if (info.cold_start_ms !== null) {
      s.queueWait.add(info.cold_start_ms, now);
      this.global.queueWait.add(info.cold_start_ms, now);
      s.promQueueWait.observe(info.cold_start_ms / 1000);
    }
    // A tunnel's duration is how long the socket stayed open, not a request latency.
    if (info.websocket) return;
    s.duration.add(info.duration_ms, now);
    this.global.duration.add(info.duration_ms, now);
    s.promDuration.observe(info.duration_ms / 1000);
    s.requestSize.add(info.bytes_in, now);
    this.global.requestSize.add(info.bytes_in, now);
    s.responseSize.add(info.bytes_out, now);
    this.global.responseSize.add(info.bytes_out, now);
  }

  /** `machine\0result` → count, for wakes and sleeps (machine ids come from the config). */
  private readonly wakes = new Map<string, number>();
  private readonly sleeps = new Map<string, number>();

  private countPower(cells: Map<string, number>, ev: HestiaEvent): void {
    const machine = ev.machineId;
    // Only configured machines become label values, and only the known results: bounded series.
    if (typeof machine !== 'string' || !(machine in (this.sources.machineIds?.() ?? {}))) return;
    const r = ev.details.result;
    const result = r === 'ok' || r === 'failed' || r === 'timeout' ? r : 'other';
    const key = `${machine}\0${result}`;
    cells.set(key, (cells.get(key) ?? 0) + 1);
  }

  /** Bus listener: lifecycle counters and the cold-start timing. Must not throw. */
  onEvent(ev: HestiaEvent): void {
    if (ev.type === 'machine_wake' || ev.type === 'machine_sleep') {
      this.countPower(ev.type === 'machine_wake' ? this.wakes : this.sleeps, ev);
      return;
    }
    if (ev.serviceId === null) return;
    const d = ev.details;
    const now = ev.ts;
    switch (ev.type) {
      case 'service_ready': {
        const s = this.series(ev.serviceId);
        s.bump('startSuccess', now);
        if (typeof d.coldStartMs === 'number' && Number.isFinite(d.coldStartMs)) {
          s.coldStart.add(d.coldStartMs, now);
          this.global.coldStart.add(d.coldStartMs, now);
          s.promColdStart.observe(d.coldStartMs / 1000);
        }
        return;
      }
      case 'service_start_failed':
        this.series(ev.serviceId).bump('startFailure', now);
        return;
      case 'service_stop': {
        const s = this.series(ev.serviceId);
        if (d.from === 'starting') s.bump('startCancelled', now);
        s.bump(d.cause === 'shutdown' ? 'stopShutdown' : d.cause === 'evicted' ? 'stopEvicted' : 'stopApi', now);
        return;
      }
      case 'idle_shutdown': {
        const s = this.series(ev.serviceId);
        s.bump('idleShutdowns', now);
        s.bump('stopIdle', now);
        return;
      }
      case 'service_crashed':
        this.series(ev.serviceId).bump('crashes', now);
        return;
      case 'service_adopted':
        this.series(ev.serviceId).bump('adoptions', now);
        return;
      case 'queue_rejected': {
        // Rejections are reported in throttled batches; `count` says how many this one stands for.
        const n = typeof d.count === 'number' && d.count >= 1 ? Math.floor(d.count) : 1;
        this.series(ev.serviceId).bump('queueRejections', now, n);
        return;
      }
      case 'queue_timeout':
        this.series(ev.serviceId).bump('queueTimeouts', now);
        return;
      case 'proxy_retry':
        this.series(ev.serviceId).bump('proxyRetries', now);
        return;
      case 'proxy_fallback':
        this.series(ev.serviceId).bump('proxyFallbacks', now);
        return;
      case 'machine_failover':
        this.series(ev.serviceId).bump('machineFailovers', now);
        return;
      default:
        return;
    }
  }

  /**
   * Counter series of one family across the services that have series (see the header: a
   * service's counters appear, all of them at once, with its first request or lifecycle event).
   */
  forEachCounter(family: string, cb: (labels: Record<string, string>, value: number) => void): void {
    for (const s of this.byId.values()) {
      s.forEachCounter((f, labels, cell) => {
        if (f === family) cb({ service: s.id, ...labels }, cell.count);
      });
    }
  }

  /** Current gauges of every configured service (read from the services at call time). */
  gauges(): Map<string, ServiceGauges> {
    const lookup = this.sources.services();
    const out = new Map<string, ServiceGauges>();
    for (const id of lookup.ids()) {
      const svc = lookup.get(id);
      if (!svc) continue;
      out.set(id, svc.load());
    }
    return out;
  }

  /**
   * True when a configured service is worth series of its own: something happened to it (it has
   * series), or it is not idle now (not cold, or requests in flight or queued).
   */
  isActive(id: string, g: ServiceGauges): boolean {
    return this.byId.has(id) || g.state !== 'cold' || g.inflight > 0 || g.queued > 0;
  }

  /**
   * The gauges of the active services only (isActive). During one `prometheus()` call the three
   * gauge families share one read of the services.
   */
  private activeGauges(): Map<string, ServiceGauges> {
    if (this.scrapeGauges !== undefined) return this.scrapeGauges;
    const out = new Map<string, ServiceGauges>();
    for (const [id, g] of this.gauges()) if (this.isActive(id, g)) out.set(id, g);
    if (this.scraping > 0) this.scrapeGauges = out;
    return out;
  }
  private scrapeGauges: Map<string, ServiceGauges> | undefined;
  private scraping = 0;

  /** Prometheus text exposition (format 0.0.4). */
  async prometheus(): Promise<string> {
    if (this.scraping++ === 0) this.scrapeGauges = undefined;
    try {
      return await this.registry.metrics();
    } finally {
      if (--this.scraping === 0) this.scrapeGauges = undefined;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
