import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InstanceHealth } from '../../src/routing/instance-health.ts';

function clock(start = 1_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('a connect failure cools the instance down for exactly cooldown_ms, then it is tried again', () => {
  const c = clock();
  const h = new InstanceHealth(c.now);
  assert.equal(h.markFailure('http://a:1', 30_000), 31_000);
  assert.equal(h.isHealthy('http://a:1'), false);
  c.advance(29_999);
  assert.equal(h.isHealthy('http://a:1'), false);
  c.advance(1);
  assert.equal(h.isHealthy('http://a:1'), true);
});

test('snapshot reports health, cooldown end and consecutive failures in config order', () => {
  const c = clock();
  const h = new InstanceHealth(c.now);
  h.markFailure('http://b:2', 5_000);
  c.advance(6_000);
  h.markFailure('http://b:2', 5_000);
  const s = h.snapshot([{ url: 'http://a:1', weight: 2, region: 'eu' }, { url: 'http://b:2' }]);
  assert.deepEqual(s, [
    { url: 'http://a:1', weight: 2, region: 'eu', healthy: true, cooldownUntil: null, consecutiveFailures: 0 },
    { url: 'http://b:2', weight: 1, region: null, healthy: false, cooldownUntil: 12_000, consecutiveFailures: 2 },
  ]);
});

test('a response clears the failure count; a trailing slash names the same instance', () => {
  const c = clock();
  const h = new InstanceHealth(c.now);
  h.markFailure('http://a:1/', 5_000);
  assert.equal(h.isHealthy('http://a:1'), false);
  h.markSuccess('http://a:1');
  assert.equal(h.isHealthy('http://a:1/'), true);
  assert.equal(h.snapshot([{ url: 'http://a:1' }])[0]?.consecutiveFailures, 0);
});
