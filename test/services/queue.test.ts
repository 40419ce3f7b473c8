import assert from 'node:assert/strict';
import { mock, test } from 'node:test';
import { HestiaError } from '../../src/errors.ts';
import { type WaiterInfo, WaitQueue } from '../../src/services/queue.ts';

function makeQueue(capacity = 3, timeoutMs = 1000, onTimeout?: (i: WaiterInfo) => void) {
  return new WaitQueue<string>({ serviceId: 's', capacity, timeoutMs, retryAfterSeconds: () => 7, onTimeout });
}

test('waiters are granted in arrival order with their wait info', async () => {
  const q = makeQueue();
  const a = q.enqueue({ coldStart: true });
  const b = q.enqueue({ coldStart: false });
  assert.equal(q.length, 2);
  const seen: boolean[] = [];
  assert.equal(
    q.grantNext((i) => {
      seen.push(i.coldStart);
      return 'first';
    }),
    true,
  );
  q.grantNext((i) => {
    seen.push(i.coldStart);
    return 'second';
  });
  assert.equal(await a, 'first');
  assert.equal(await b, 'second');
  assert.deepEqual(seen, [true, false]);
  assert.equal(
    q.grantNext(() => 'x'),
    false,
  );
});

test('a full queue rejects at once with 503 HESTIA_QUEUE_FULL and Retry-After', async () => {
  const q = makeQueue(2);
  const held = [q.enqueue({ coldStart: true }), q.enqueue({ coldStart: true })];
  await assert.rejects(q.enqueue({ coldStart: true }), (err: unknown) => {
    assert.ok(err instanceof HestiaError);
    assert.equal(err.code, 'HESTIA_QUEUE_FULL');
    assert.equal(err.status, 503);
    assert.equal(err.headers['Retry-After'], '7');
    return true;
  });
  assert.equal(q.length, 2, 'the rejected request was never queued');
  q.rejectAll(new Error('end'));
  await Promise.allSettled(held);
});

test('a waiter past its deadline leaves the queue with 504 HESTIA_QUEUE_TIMEOUT', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const timedOut: WaiterInfo[] = [];
    const q = makeQueue(3, 5000, (i) => timedOut.push(i));
    const early = q.enqueue({ coldStart: true });
    mock.timers.tick(2000);
    const late = q.enqueue({ coldStart: true });
    mock.timers.tick(3000);
    await assert.rejects(early, (err: unknown) => err instanceof HestiaError && err.code === 'HESTIA_QUEUE_TIMEOUT');
    assert.equal(q.length, 1, 'only the late waiter is left');
    assert.equal(timedOut.length, 1);
    q.grantNext(() => 'ok');
    assert.equal(await late, 'ok');
    mock.timers.tick(10_000);
    assert.equal(timedOut.length, 1, 'a granted waiter has no deadline any more');
  } finally {
    mock.timers.reset();
  }
});

test('an aborted waiter leaves the queue; the others keep their place', async () => {
  const q = makeQueue();
  const ac = new AbortController();
  const a = q.enqueue({ coldStart: true });
  const b = q.enqueue({ coldStart: true, signal: ac.signal });
  const c = q.enqueue({ coldStart: true });
  ac.abort(new Error('client gone'));
  await assert.rejects(b, /client gone/);
  assert.equal(q.length, 2);
  q.grantNext(() => 'A');
  q.grantNext(() => 'C');
  assert.equal(await a, 'A');
  assert.equal(await c, 'C');
});

test('an already aborted signal is never queued', async () => {
  const q = makeQueue();
  await assert.rejects(q.enqueue({ coldStart: true, signal: AbortSignal.abort(new Error('gone')) }), /gone/);
  assert.equal(q.length, 0);
});

test('rejectAll fails every waiter with the same error and empties the queue', async () => {
  const q = makeQueue();
  const all = [q.enqueue({ coldStart: true }), q.enqueue({ coldStart: true })];
  const err = new HestiaError('HESTIA_START_FAILED', 'nope');
  assert.equal(q.rejectAll(err), 2);
  for (const p of all) await assert.rejects(p, (e: unknown) => e === err);
  assert.equal(q.length, 0);
});
