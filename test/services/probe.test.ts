import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FIRST_POLL_MS, pollDelays } from '../../src/services/probe.ts';

function take(next: () => number, n: number): number[] {
  return Array.from({ length: n }, () => next());
}

test('readiness polling starts fast and backs off to health_interval_ms, never above it', () => {
  const d = take(pollDelays(250), 12);
  assert.equal(d[0], FIRST_POLL_MS);
  for (let i = 1; i < d.length; i++) assert.ok(d[i]! >= d[i - 1]!, `non-decreasing: ${d.join(',')}`);
  assert.ok(
    d.every((x) => x <= 250),
    `bounded: ${d.join(',')}`,
  );
  assert.equal(d.at(-1), 250);
  // A long start does not poll much more than with a fixed interval: the ramp is short.
  assert.ok(d.indexOf(250) <= 10, `reaches the interval within 10 polls: ${d.join(',')}`);
});

test('an interval below the first delay is honoured from the first poll', () => {
  assert.deepEqual(take(pollDelays(10), 3), [10, 10, 10]);
  assert.deepEqual(take(pollDelays(5), 2), [5, 5]);
});
