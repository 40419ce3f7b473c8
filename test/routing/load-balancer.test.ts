import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type LoadBalancerState, loadBalancer } from '../../src/routing/strategies/load-balancer.ts';
import type { ServiceSnapshot } from '../../src/routing/types.ts';
import { cfg, inst, snap, view } from './helpers.ts';

function run(snapshot: ServiceSnapshot, n: number, state: LoadBalancerState = loadBalancer.createState!(cfg())) {
  const urls: Array<string | null> = [];
  for (let i = 0; i < n; i++) urls.push(loadBalancer.select(view(), snapshot, cfg(), state).url);
  return urls;
}

function counts(urls: Array<string | null>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const u of urls) out[String(u)] = (out[String(u)] ?? 0) + 1;
  return out;
}

test('equal weights are plain round robin in config order', () => {
  const s = snap([inst('http://a'), inst('http://b'), inst('http://c')]);
  assert.deepEqual(run(s, 7), ['http://a', 'http://b', 'http://c', 'http://a', 'http://b', 'http://c', 'http://a']);
});

test('weights 3:1 give exactly 3:1 per cycle, interleaved rather than in a burst', () => {
  const s = snap([inst('http://a', { weight: 3 }), inst('http://b', { weight: 1 })]);
  const urls = run(s, 8);
  assert.deepEqual(urls.slice(0, 4), ['http://a', 'http://a', 'http://b', 'http://a']);
  assert.deepEqual(counts(urls), { 'http://a': 6, 'http://b': 2 });
});

test('fractional weights are honoured (0.5 : 1.5 → 1 : 3)', () => {
  const s = snap([inst('http://a', { weight: 0.5 }), inst('http://b', { weight: 1.5 })]);
  assert.deepEqual(counts(run(s, 400)), { 'http://a': 100, 'http://b': 300 });
});

test('an unhealthy instance is skipped and the reason says so', () => {
  const s = snap([inst('http://a'), inst('http://b', { healthy: false, cooldownUntil: 5_000 }), inst('http://c')]);
  const state = loadBalancer.createState!(cfg());
  const d = loadBalancer.select(view(), s, cfg(), state);
  assert.equal(d.url, 'http://a');
  assert.match(d.reason, /1 unhealthy skipped/);
  assert.deepEqual(counts(run(s, 10, state).concat(d.url)), { 'http://a': 6, 'http://c': 5 });
});

test('an instance that recovers gets its share again', () => {
  const state = loadBalancer.createState!(cfg());
  const down = snap([inst('http://a'), inst('http://b', { healthy: false, cooldownUntil: 5_000 })]);
  assert.deepEqual(run(down, 3, state), ['http://a', 'http://a', 'http://a']);
  const up = snap([inst('http://a'), inst('http://b')]);
  assert.deepEqual(counts(run(up, 10, state)), { 'http://a': 5, 'http://b': 5 });
});

test('all instances unhealthy → url null (the gateway answers 502)', () => {
  const s = snap([inst('http://a', { healthy: false }), inst('http://b', { healthy: false })]);
  const d = loadBalancer.select(view(), s, cfg(), loadBalancer.createState!(cfg()));
  assert.equal(d.url, null);
  assert.match(d.reason, /all 2 instances are cooling down/);
});

test('no instances configured → base_url', () => {
  const d = loadBalancer.select(view(), snap([], 'http://base:9'), cfg(), loadBalancer.createState!(cfg()));
  assert.deepEqual(d, { url: 'http://base:9', reason: 'no instances configured: base_url' });
});

test('state is per service: two states do not share a position', () => {
  const s = snap([inst('http://a'), inst('http://b')]);
  const s1 = loadBalancer.createState!(cfg());
  const s2 = loadBalancer.createState!(cfg());
  assert.deepEqual(run(s, 1, s1), ['http://a']);
  assert.deepEqual(run(s, 1, s2), ['http://a']);
  assert.deepEqual(run(s, 1, s1), ['http://b']);
});
