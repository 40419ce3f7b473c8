import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Histogram, Registry } from 'prom-client';
import { BucketHistogram } from '../../src/observability/bucket-histogram.ts';

const BUCKETS = [0.005, 0.01, 0.1, 1, 5];

/** The same observations through prom-client's Histogram and ours: the exposition must be identical. */
test("BucketHistogram writes exactly what prom-client's Histogram writes for the same observations", async () => {
  const theirs = new Registry();
  const ours = new Registry();
  const h = new Histogram({
    name: 'x_seconds',
    help: 'h',
    labelNames: ['service'],
    buckets: BUCKETS,
    registers: [theirs],
  });
  const b = new BucketHistogram('x_seconds', 'h', BUCKETS, ours);
  const samples: Array<[string, number]> = [
    ['a', 0.001],
    ['a', 0.005], // on a bound: counted in that bucket (le = less or equal)
    ['a', 0.0051],
    ['b', 3],
    ['a', 42], // above every bound: +Inf only
    ['b', 0],
    ['a', 1],
  ];
  for (const [svc, v] of samples) {
    h.labels(svc).observe(v);
    b.labels(svc).observe(v);
  }
  b.labels('never-observed'); // a series appears only after its first observation
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.match(await ours.metrics(), /x_seconds_bucket\{le="0.005",service="a"\} 2\n/);
  assert.match(await ours.metrics(), /x_seconds_bucket\{le="\+Inf",service="a"\} 5\n/);
  assert.doesNotMatch(await ours.metrics(), /never-observed/);
});

test('reset zeroes every series, and non-finite values are ignored', async () => {
  const r = new Registry();
  const b = new BucketHistogram('y_seconds', 'h', BUCKETS, r);
  const s = b.labels('a');
  s.observe(0.2);
  s.observe(Number.NaN);
  s.observe(Number.POSITIVE_INFINITY);
  assert.equal(s.count, 1);
  assert.equal(s.sum, 0.2);
  r.resetMetrics();
  assert.equal(s.count, 0);
  assert.equal((await r.metrics()).includes('y_seconds_count'), false);
});
