import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { bucketOf, ConcurrencyGate, FailureLimiter } from '../../src/auth/rate-limit.ts';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('FailureLimiter', () => {
  test('5 free failures, then blocks that double: 1 s, 2 s, 4 s …', () => {
    const c = clock();
    const l = new FailureLimiter({ now: c.now });
    for (let i = 1; i <= 5; i++) assert.equal(l.fail('1.2.3.4').blocked, false, `failure ${i} is free`);
    assert.equal(l.check('1.2.3.4').blocked, false);
    const sixth = l.fail('1.2.3.4');
    assert.deepEqual(sixth, { blocked: true, retryAfterMs: 1000, failures: 6 });
    assert.deepEqual(l.check('1.2.3.4'), { blocked: true, retryAfterMs: 1000 });
    c.advance(999);
    assert.equal(l.check('1.2.3.4').blocked, true);
    c.advance(1);
    assert.equal(l.check('1.2.3.4').blocked, false, 'the block ends on time');
    assert.equal(l.fail('1.2.3.4').retryAfterMs, 2000);
    c.advance(2000);
    assert.equal(l.fail('1.2.3.4').retryAfterMs, 4000);
    assert.equal(l.check('5.6.7.8').blocked, false, 'other addresses are unaffected');
    assert.equal(l.blockedCount(), 1);
  });

  test('the block is capped at maxBlockMs', () => {
    const c = clock();
    const l = new FailureLimiter({ now: c.now, freeFailures: 0, baseBlockMs: 1000, maxBlockMs: 5000 });
    const waits = Array.from({ length: 40 }, () => {
      const r = l.fail('a');
      c.advance(r.retryAfterMs);
      return r.retryAfterMs;
    });
    assert.deepEqual(waits.slice(0, 5), [1000, 2000, 4000, 5000, 5000]);
    assert.equal(Math.max(...waits), 5000);
  });

  test('a success resets the count; so does a quiet period', () => {
    const c = clock();
    const l = new FailureLimiter({ now: c.now });
    for (let i = 0; i < 5; i++) l.fail('a');
    l.succeed('a');
    assert.equal(l.fail('a').failures, 1);
    for (let i = 0; i < 4; i++) l.fail('a');
    c.advance(15 * 60_000);
    assert.equal(l.fail('a').failures, 1, 'forgotten after 15 quiet minutes');
  });

  test('memory is bounded: a flood of addresses never grows the map past maxEntries', () => {
    const c = clock();
    const l = new FailureLimiter({ now: c.now, maxEntries: 100, freeFailures: 0 });
    for (let i = 0; i < 10_000; i++) l.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    assert.equal(l.size, 100);
    // The most recent ones are the ones kept.
    assert.equal(l.check('10.0.39.15').blocked, true);
    assert.equal(l.check('10.0.0.0').blocked, false);
  });

  test('IPv6 addresses are tracked per /64; IPv4-mapped addresses as IPv4', () => {
    const c = clock();
    const l = new FailureLimiter({ now: c.now, freeFailures: 0 });
    l.fail('2001:db8:1:2::1');
    assert.equal(l.check('2001:db8:1:2:ffff::9').blocked, true, 'same /64');
    assert.equal(l.check('2001:db8:1:3::1').blocked, false, 'other /64');
    l.fail('::ffff:192.0.2.1');
    assert.equal(l.check('192.0.2.1').blocked, true);
  });
});

describe('bucketOf', () => {
  test('normalises addresses', () => {
    assert.equal(bucketOf('192.0.2.1'), '192.0.2.1');
    assert.equal(bucketOf('::FFFF:192.0.2.1'), '192.0.2.1');
    assert.equal(bucketOf('2001:DB8:0:0:1::1'), '2001:db8:0:0::/64');
    assert.equal(bucketOf('::1'), '0:0:0:0::/64');
    assert.equal(bucketOf('fe80::1%eth0'), 'fe80:0:0:0::/64');
    assert.equal(bucketOf('64:ff9b::192.0.2.1'), '64:ff9b:0:0::/64');
    assert.equal(bucketOf('unknown'), 'unknown');
  });
});

describe('ConcurrencyGate', () => {
  test('caps per address bucket and in total; leave() frees the slot once', () => {
    const g = new ConcurrencyGate(3, 1);
    const a = g.enter('10.0.0.1');
    assert.ok(a.ok);
    assert.deepEqual(g.enter('::ffff:10.0.0.1'), { ok: false, reason: 'address', limit: 1 }, 'same bucket');
    const b = g.enter('2001:db8::1');
    assert.ok(b.ok);
    assert.deepEqual(g.enter('2001:db8::2'), { ok: false, reason: 'address', limit: 1 }, 'same /64');
    const c = g.enter('10.0.0.3');
    assert.ok(c.ok);
    assert.deepEqual(g.enter('10.0.0.4'), { ok: false, reason: 'total', limit: 3 });
    a.leave();
    a.leave();
    assert.equal(g.inUse(), 2, 'a second leave() is a no-op');
    assert.equal(g.inUse('10.0.0.1'), 0);
    assert.ok(g.enter('10.0.0.4').ok);
  });
});
