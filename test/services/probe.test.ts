import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FIRST_POLL_MS, POLL_FRACTION, pollDelay } from '../../src/services/probe.ts';

/** The times (ms after the launch) at which a wait would probe, if each probe took `rttMs`. */
function schedule(intervalMs: number, untilMs: number, rttMs = 1): number[] {
  const at: number[] = [];
  for (let t = 0; t < untilMs; ) {
    at.push(t);
    t += rttMs;
    t += pollDelay(intervalMs, t);
  }
  return at;
}

test('readiness polling starts at FIRST_POLL_MS and stays within 5 % of the time waited, up to health_interval_ms', () => {
  assert.equal(pollDelay(250, 0), FIRST_POLL_MS);
  assert.equal(pollDelay(250, 100), FIRST_POLL_MS);
  assert.equal(pollDelay(250, 500), 25);
  assert.equal(pollDelay(250, 2_000), 100);
  assert.equal(pollDelay(250, 5_000), 250);
  assert.equal(pollDelay(250, 600_000), 250, 'never above the configured interval');
  for (let t = 0; t < 20_000; t += 37) {
    const d = pollDelay(250, t);
    assert.ok(d <= Math.max(FIRST_POLL_MS, Math.ceil(t * POLL_FRACTION)), `t=${t}: ${d}`);
    assert.ok(d >= Math.min(250, FIRST_POLL_MS));
  }
});

test('a service ready at any moment of its start is noticed within max(10 ms, 5 %) of that moment', () => {
  const at = schedule(250, 30_000);
  for (const readyAt of [3, 40, 180, 500, 1_234, 4_000, 12_345]) {
    const noticed = at.find((t) => t >= readyAt)!;
    const bound = Math.min(250, Math.max(FIRST_POLL_MS, Math.ceil(noticed * POLL_FRACTION))) + 1;
    assert.ok(noticed - readyAt <= bound, `ready at ${readyAt} ms, noticed at ${noticed} ms`);
  }
});

test('the extra probes grow slowly: a long start polls at the configured interval', () => {
  const fiveSeconds = schedule(250, 5_000).length;
  assert.ok(fiveSeconds < 100, `${fiveSeconds} probes in a 5 s start`);
  const minute = schedule(250, 60_000).length;
  // A fixed 250 ms interval would probe 240 times in a minute; the ramp adds under 100.
  assert.ok(minute < 240 + 100, `${minute} probes in a 60 s start`);
});

test('an interval below the first delay is honoured from the first poll', () => {
  assert.equal(pollDelay(5, 0), 5);
  assert.equal(pollDelay(5, 10_000), 5);
  assert.equal(pollDelay(10, 0), 10);
});
