/**
 * In-process statistics for the JSON metrics view (the original Hestia's `timers` and
 * `histograms`): exact count / sum / min / max over the whole life of the gateway, plus
 * percentiles over a sliding window of the most recent samples.
 *
 * Why a window and not prom-client's Summary: a Summary keeps a t-digest per series and per age
 * bucket and costs more on every observation; the original computed its p50/p95/p99 from the
 * last 1000 samples, and a fixed ring buffer does exactly that with one array write per sample
 * and no allocation. Percentiles are computed only when the JSON is asked for (copy + sort of
 * at most WINDOW numbers).
 */

/** Samples kept per statistic for percentiles (the original kept the last 1000). */
export const WINDOW = 1000;

export interface TimerJson {
  count: number;
  total_ms: number;
  avg_ms: number;
  min_ms: number;
  max_ms: number;
  p50: number;
  p95: number;
  p99: number;
  /** Last update, ISO 8601 (null before the first sample). */
  timestamp: string | null;
}

export interface HistogramJson {
  count: number;
  /** How many recent samples the percentiles were computed from (≤ WINDOW). */
  window: number;
  p50: number;
  p95: number;
  p99: number;
  timestamp: string | null;
}

export class SampleStats {
  count = 0;
  sum = 0;
  min = Number.POSITIVE_INFINITY;
  max = 0;
  /** Epoch ms of the last sample, 0 = never. */
  updatedAt = 0;
  private readonly ring = new Float64Array(WINDOW);
  private next = 0;
  private filled = 0;

  /** Record one sample. O(1), no allocation. */
  add(value: number, now: number): void {
    this.count++;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    this.updatedAt = now;
    this.ring[this.next] = value;
    this.next = this.next + 1 === WINDOW ? 0 : this.next + 1;
    if (this.filled < WINDOW) this.filled++;
  }

  /** p-th percentile (0–100) of the window, linearly interpolated like the original; 0 when empty. */
  percentiles(ps: readonly number[]): number[] {
    if (this.filled === 0) return ps.map(() => 0);
    const sorted = this.ring.slice(0, this.filled).sort();
    return ps.map((p) => {
      const idx = (p / 100) * (sorted.length - 1);
      const lo = Math.floor(idx);
      const hi = Math.min(lo + 1, sorted.length - 1);
      const w = idx - lo;
      return sorted[lo]! * (1 - w) + sorted[hi]! * w;
    });
  }

  get window(): number {
    return this.filled;
  }

  /** The original's timer entry, plus p50/p95/p99 over the window. Values are in the unit added. */
  toTimerJson(): TimerJson {
    const [p50, p95, p99] = this.percentiles([50, 95, 99]);
    return {
      count: this.count,
      total_ms: round(this.sum),
      avg_ms: this.count === 0 ? 0 : round(this.sum / this.count),
      min_ms: this.count === 0 ? 0 : round(this.min),
      max_ms: round(this.max),
      p50: round(p50!),
      p95: round(p95!),
      p99: round(p99!),
      timestamp: iso(this.updatedAt),
    };
  }

  /** The original's histogram entry. */
  toHistogramJson(): HistogramJson {
    const [p50, p95, p99] = this.percentiles([50, 95, 99]);
    return {
      count: this.count,
      window: this.filled,
      p50: round(p50!),
      p95: round(p95!),
      p99: round(p99!),
      timestamp: iso(this.updatedAt),
    };
  }
}

/** Three decimals: sub-millisecond precision without float noise in the JSON. */
export function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

export function iso(ms: number): string | null {
  return ms === 0 ? null : new Date(ms).toISOString();
}
