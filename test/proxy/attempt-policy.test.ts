/**
 * The attempt policy (src/proxy/attempt-policy.ts), the one retry → fallback → fail decision
 * of forward.ts and the WebSocket tunnel, as a pure function.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Failover, nextAttempt } from '../../src/proxy/attempt-policy.ts';

const CFG = { retry_count: 3, retry_delay_ms: 250 };
const FALLBACK = 'http://127.0.0.1:9/fallback';

function state(attempts: number, over: { onFallback?: boolean; bodyStarted?: boolean } = {}) {
  return { attempts, onFallback: over.onFallback ?? false, bodyStarted: over.bodyStarted ?? false };
}

/** A strategy that offers `free` new instances, then has nothing left when `exhaust`. */
function failover(free: number, exhaust = false): Failover & { asked: number } {
  return {
    asked: 0,
    exhausted: false,
    reroute() {
      this.asked++;
      if (this.asked <= free) return true;
      if (exhaust) (this as { exhausted: boolean }).exhausted = true;
      return false;
    },
  };
}

test('a connect failure is retried retry_count times, retry_delay_ms apart, then the fallback, then fail', () => {
  assert.deepEqual(nextAttempt('connect', state(1), CFG, FALLBACK, null), {
    action: 'retry',
    delayMs: 250,
    failover: false,
  });
  assert.equal(nextAttempt('connect', state(2), CFG, FALLBACK, null).action, 'retry');
  assert.deepEqual(nextAttempt('connect', state(3), CFG, FALLBACK, null), { action: 'fallback', url: FALLBACK });
  assert.deepEqual(nextAttempt('connect', state(4, { onFallback: true }), CFG, FALLBACK, null), { action: 'fail' });
  assert.deepEqual(nextAttempt('connect', state(3), CFG, null, null), { action: 'fail' });
});

test('retry_count 0 still means one attempt; the fallback follows it', () => {
  assert.equal(
    nextAttempt('connect', state(1), { retry_count: 0, retry_delay_ms: 0 }, FALLBACK, null).action,
    'fallback',
  );
});

test('a reset is retried only while no body byte was streamed; timeouts and protocol errors never', () => {
  assert.equal(nextAttempt('reset', state(1), CFG, FALLBACK, null).action, 'retry');
  assert.equal(nextAttempt('reset', state(1, { bodyStarted: true }), CFG, FALLBACK, null).action, 'fail');
  for (const kind of ['headers-timeout', 'body-timeout', 'invalid-request', 'protocol'] as const)
    assert.equal(nextAttempt(kind, state(1), CFG, FALLBACK, null).action, 'fail', kind);
});

test('with a strategy: an untried instance is tried at once, beyond retry_count; none left → fallback', () => {
  const f = failover(5);
  assert.deepEqual(nextAttempt('connect', state(7), CFG, FALLBACK, f), { action: 'retry', delayMs: 0, failover: true });
  const none = failover(0, true);
  assert.deepEqual(nextAttempt('connect', state(1), CFG, FALLBACK, none), { action: 'fallback', url: FALLBACK });
  assert.deepEqual(nextAttempt('connect', state(1), CFG, null, failover(0, true)), { action: 'fail' });
  // Only an instance already tried: a plain retry, counted against retry_count.
  assert.deepEqual(nextAttempt('connect', state(1), CFG, FALLBACK, failover(0)), {
    action: 'retry',
    delayMs: 250,
    failover: false,
  });
});

test('the strategy is not asked when no further attempt is allowed', () => {
  const f = failover(5);
  nextAttempt('protocol', state(1), CFG, FALLBACK, f);
  nextAttempt('connect', state(1, { onFallback: true }), CFG, FALLBACK, f);
  assert.equal(f.asked, 0);
});
