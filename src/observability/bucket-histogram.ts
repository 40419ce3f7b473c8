/**
 * A Prometheus histogram with a single `service` label, whose `observe()` is a bucket search and
 * three number writes, exposed through prom-client's registry like any other metric.
 *
 * Why not prom-client's Histogram: its `observe()` re-validates and hashes the label set on every
 * call, even on a child bound with `.labels()`; with one observation per proxied request that was
 * ~2 % of the gateway's busy time at c=32 (`bench/README.md`, profile). The counters already work
 * this way (counted in plain fields, copied into prom-client at scrape time); a histogram cannot be
 * copied into prom-client's without replaying every sample, so this one implements the small
 * metric interface its Registry asks for (`name`, `help`, `type`, `get()`, `reset()`) and leaves
 * the text format to prom-client. A series appears after its first observation, as with
 * prom-client.
 */
import type { Registry } from 'prom-client';

/** What prom-client's Registry reads from a metric's `get()` (its d.ts types `type` as an enum; at run time it is the string). */
interface HistogramValue {
  labels: { le?: number | string; service: string };
  value: number;
  metricName: string;
}
interface HistogramSnapshot {
  name: string;
  help: string;
  type: 'histogram';
  aggregator: 'sum';
  values: HistogramValue[];
}

/** One service's buckets: `counts[i]` = observations in (bounds[i-1], bounds[i]]; the last is +Inf. */
export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly service: string,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class BucketHistogram {
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  private readonly series = new Map<string, HistogramSeries>();
  private readonly bounds: readonly number[];

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
    registry: Registry,
  ) {
    this.bounds = [...buckets].sort((a, b) => a - b);
    // Cast: Registry.registerMetric is typed for prom-client's own classes; it only uses name,
    // help, type, get() and reset(), which this implements.
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  /** The series of one service (created once, kept by the caller for its observe()). */
  labels(service: string): HistogramSeries {
    let s = this.series.get(service);
    if (s === undefined) {
      s = new HistogramSeries(service, this.bounds);
      this.series.set(service, s);
    }
    return s;
  }

  async get(): Promise<HistogramSnapshot> {
    const values: HistogramValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      if (s.count === 0) continue;
      let acc = 0;
      for (let i = 0; i < s.counts.length; i++) {
        acc += s.counts[i]!;
        const le = i < this.bounds.length ? this.bounds[i]! : '+Inf';
        // `le` first, as prom-client's Histogram writes it.
        values.push({ labels: { le, service: s.service }, value: acc, metricName: bucket });
      }
      values.push({ labels: { service: s.service }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { service: s.service }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const s of this.series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
