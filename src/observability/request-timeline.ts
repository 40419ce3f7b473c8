/**
 * Per-service request timelines for the dashboard (SPEC §12): request count, errors and a
 * latency histogram (for p50/p95) in 10-second buckets over the last 15 minutes, plus each
 * service's cold-start times (last, typical).
 *
 * Cost: nothing is allocated for a configured service until its first request ends, so 2,000
 * services without traffic cost nothing; a service with traffic holds one fixed ring of
 * TIMELINE_BUCKETS × (2 + latency bins) 32-bit counters (~7 KiB), reused forever (a bucket is
 * cleared when the ring comes back to it). Recording a request is a bucket-index computation and
 * three array increments. Percentiles are computed only when the dashboard reads.
 *
 * Fed by the proxy's request-end report (every door: request-record.ts) and by lifecycle events
 * (`service_ready` carries `coldStartMs`); main.ts wires both.
 */
import type { HestiaEvent } from './events.ts';
import type { ProxyObserver, ProxyRequestInfo } from './request-record.ts';

export const TIMELINE_BUCKET_MS = 10_000;
/** 15 minutes of 10-second buckets. */
export const TIMELINE_BUCKETS = 90;
/** Upper bounds (ms) of the latency bins; one more bin holds everything slower. */
export const LATENCY_BOUNDS_MS = [
  1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 200, 350, 500, 750, 1000, 2000, 3500, 5000, 10_000, 30_000, 60_000, 300_000,
] as const;
const BINS = LATENCY_BOUNDS_MS.length + 1;
/** Cold starts remembered per service for the "typical" (median) value. */
const COLD_STARTS_KEPT = 20;

/**
 * One service's buckets that had requests, oldest first (sparse: a bucket without requests is
 * absent, so a service with a little traffic costs a few numbers, not 90 × 4).
 */
export interface TimelineSeries {
  /** Each listed bucket's index from the snapshot's `start` (0 = the first bucket). */
  at: number[];
  /** Requests that ended in each listed bucket. */
  count: number[];
  /** Of those, failures: a 5xx sent to the client or a gateway error other than the client leaving. */
  errors: number[];
  /** Latency percentiles (ms, 0.1 ms resolution) of each bucket's requests; null when none had one (WebSockets only). */
  p50: Array<number | null>;
  p95: Array<number | null>;
}

export interface ColdStartSummary {
  lastMs: number;
  /** The median of the last cold starts (up to 20). */
  typicalMs: number;
  /** How many the median is over. */
  samples: number;
  at: string;
}

export interface TimelineSnapshot {
  bucketMs: number;
  /** Start (epoch ms) of the first bucket in every series. */
  start: number;
  /** Buckets in every series (the last one is the current, still filling). */
  buckets: number;
  now: number;
  /** Only services that had requests in the window. */
  services: Record<string, TimelineSeries>;
  /** Per service with a cold start; with `since`, only those whose last cold start is that recent. */
  coldStarts: Record<string, ColdStartSummary>;
}

class ServiceTimeline {
  /** Bucket number (epoch ms / bucket ms) each ring slot currently holds; -1 = never used. */
  readonly epochs = new Float64Array(TIMELINE_BUCKETS).fill(-1);
  readonly count = new Uint32Array(TIMELINE_BUCKETS);
  readonly errors = new Uint32Array(TIMELINE_BUCKETS);
  readonly bins = new Uint32Array(TIMELINE_BUCKETS * BINS);
  /** Newest bucket number recorded. */
  last = -1;

  record(bucket: number, failed: boolean, latencyMs: number | null): void {
    const slot = bucket % TIMELINE_BUCKETS;
    if (this.epochs[slot] !== bucket) {
      this.epochs[slot] = bucket;
      this.count[slot] = 0;
      this.errors[slot] = 0;
      this.bins.fill(0, slot * BINS, slot * BINS + BINS);
    }
    if (bucket > this.last) this.last = bucket;
    this.count[slot]!++;
    if (failed) this.errors[slot]!++;
    if (latencyMs !== null) {
      let i = 0;
      while (i < LATENCY_BOUNDS_MS.length && latencyMs > LATENCY_BOUNDS_MS[i]!) i++;
      this.bins[slot * BINS + i]!++;
    }
  }

  /** The slot of `bucket` when it is still in the ring, else -1. */
  slotOf(bucket: number): number {
    const slot = bucket % TIMELINE_BUCKETS;
    return this.epochs[slot] === bucket ? slot : -1;
  }

  /** Percentile `q` (0..1) of one slot's latencies, interpolated inside its bin; null when empty. */
  percentile(slot: number, q: number): number | null {
    let total = 0;
    const base = slot * BINS;
    for (let i = 0; i < BINS; i++) total += this.bins[base + i]!;
    if (total === 0) return null;
    const rank = q * total;
    let seen = 0;
    for (let i = 0; i < BINS; i++) {
      const n = this.bins[base + i]!;
      if (n === 0) continue;
      if (seen + n >= rank) {
        const lo = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!;
        const hi = i < LATENCY_BOUNDS_MS.length ? LATENCY_BOUNDS_MS[i]! : lo;
        const v = lo + ((rank - seen) / n) * (hi - lo);
        return Math.round(v * 10) / 10;
      }
      seen += n;
    }
    return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]!;
  }
}

/** Whether an ended request counts as an error on the dashboard. */
export function isFailure(info: ProxyRequestInfo): boolean {
  if (info.status >= 500) return true;
  return info.error !== null && info.error !== 'CLIENT_CLOSED';
}

export class RequestTimeline implements ProxyObserver {
  private readonly timelines = new Map<string, ServiceTimeline>();
  private readonly coldStarts = new Map<string, { last: number; at: string; ts: number; recent: number[] }>();

  constructor(private readonly clock: () => number = Date.now) {}

  onRequestEnd(info: ProxyRequestInfo): void {
    const id = info.service_id;
    if (id === null) return;
    let t = this.timelines.get(id);
    if (t === undefined) {
      t = new ServiceTimeline();
      this.timelines.set(id, t);
    }
    // A WebSocket's duration is how long the tunnel stayed open, not a latency.
    t.record(Math.floor(this.clock() / TIMELINE_BUCKET_MS), isFailure(info), info.websocket ? null : info.duration_ms);
  }

  onEvent(ev: HestiaEvent): void {
    if (ev.type !== 'service_ready' || ev.serviceId === null) return;
    const ms = ev.details.coldStartMs;
    if (typeof ms !== 'number' || !Number.isFinite(ms)) return;
    let c = this.coldStarts.get(ev.serviceId);
    if (c === undefined) {
      c = { last: ms, at: '', ts: 0, recent: [] };
      this.coldStarts.set(ev.serviceId, c);
    }
    c.last = ms;
    c.at = new Date(ev.ts).toISOString();
    c.ts = ev.ts;
    c.recent.push(ms);
    if (c.recent.length > COLD_STARTS_KEPT) c.recent.shift();
  }

  /** Forget services that are no longer configured (called on read with the current ids). */
  private prune(known: ReadonlySet<string>): void {
    for (const id of this.timelines.keys()) if (!known.has(id)) this.timelines.delete(id);
    for (const id of this.coldStarts.keys()) if (!known.has(id)) this.coldStarts.delete(id);
  }

  /**
   * The series of `ids` (the services the reader may see) from `since` (epoch ms; clamped to the
   * 15-minute window; default: the whole window) to now. `configured` = every configured id
   * (state of removed services is dropped).
   */
  snapshot(opts: { ids: Iterable<string>; configured: ReadonlySet<string>; since?: number }): TimelineSnapshot {
    this.prune(opts.configured);
    const now = this.clock();
    const current = Math.floor(now / TIMELINE_BUCKET_MS);
    const oldest = current - TIMELINE_BUCKETS + 1;
    const from =
      opts.since === undefined
        ? oldest
        : Math.min(current, Math.max(oldest, Math.floor(opts.since / TIMELINE_BUCKET_MS)));
    const n = current - from + 1;
    const services: Record<string, TimelineSeries> = {};
    const coldStarts: Record<string, ColdStartSummary> = {};
    for (const id of opts.ids) {
      const c = this.coldStarts.get(id);
      // With `since`, only the cold starts that happened from then on (the reader keeps the rest).
      if (c && (opts.since === undefined || c.ts >= from * TIMELINE_BUCKET_MS)) {
        const sorted = [...c.recent].sort((a, b) => a - b);
        coldStarts[id] = {
          lastMs: Math.round(c.last),
          typicalMs: Math.round(sorted[Math.floor((sorted.length - 1) / 2)]!),
          samples: sorted.length,
          at: c.at,
        };
      }
      const t = this.timelines.get(id);
      if (t === undefined || t.last < from) continue;
      const s: TimelineSeries = { at: [], count: [], errors: [], p50: [], p95: [] };
      for (let b = from; b <= current; b++) {
        const slot = t.slotOf(b);
        if (slot < 0 || t.count[slot] === 0) continue;
        s.at.push(b - from);
        s.count.push(t.count[slot]!);
        s.errors.push(t.errors[slot]!);
        s.p50.push(t.percentile(slot, 0.5));
        s.p95.push(t.percentile(slot, 0.95));
      }
      if (s.at.length > 0) services[id] = s;
    }
    return { bucketMs: TIMELINE_BUCKET_MS, start: from * TIMELINE_BUCKET_MS, buckets: n, now, services, coldStarts };
  }

  /** Services holding a timeline (for tests and memory accounting). */
  get size(): number {
    return this.timelines.size;
  }
}
