/**
 * The lifecycle rules of SPEC §5 through ServiceHandle.acquire, with real child processes
 * (test/fixtures/lifecycle-upstream.mjs) and real HTTP upstreams on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HestiaError } from '../../src/errors.ts';
import { FIRST_GRANT_AFTER_START, GRANT_BATCH } from '../../src/services/service-runtime.ts';
import type { Lease } from '../../src/services/types.ts';
import { configFrom } from '../helpers/gateway.ts';
import {
  closedAfterEachTest,
  countLines,
  fixtureArgv,
  fixtureService,
  isAlive,
  readPids,
  startRegistry,
  type TestRegistry,
} from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { jsonHandler, startUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const { tmp, keep } = closedAfterEachTest();
function start(services: Record<string, unknown>): TestRegistry {
  return keep(startRegistry(services));
}
function svc(t: TestRegistry, id = 'svc') {
  const s = t.registry.get(id);
  assert.ok(s, `service ${id}`);
  return s;
}
function isCode(code: string) {
  return (err: unknown) => {
    assert.ok(err instanceof HestiaError, `expected a HestiaError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  };
}

test('200 concurrent requests to a cold service cause exactly one launch and 200 leases', async () => {
  const port = await freePort();
  const pids = tmp.path('concurrent.pids');
  const t = start({ svc: fixtureService(port, ['--record-pid', pids, '--boot-ms', '150'], { queue_size: 500 }) });
  const s = svc(t);
  const leases = await Promise.all(Array.from({ length: 200 }, () => s.acquire()));
  assert.equal(leases.length, 200);
  assert.equal(readPids(pids).length, 1, 'the fixture recorded one launch');
  assert.equal(t.events.of('service_start').length, 1);
  assert.equal(t.events.of('service_ready').length, 1);
  assert.ok(leases.every((l) => l.coldStart && l.baseUrl === `http://127.0.0.1:${port}`));
  assert.equal(s.status().inflight, 200);
  for (const l of leases) l.release();
  assert.equal(s.status().inflight, 0);
  const res = await fetch(`http://127.0.0.1:${port}/x`);
  assert.equal(((await res.json()) as { pid: number }).pid, readPids(pids)[0]);
});

test("the child's output is logged, tagged with its service id", async () => {
  const port = await freePort();
  const t = start({ svc: fixtureService(port, ['--stdout', 'model loaded', '--stderr', 'a warning']) });
  (await svc(t).acquire()).release();
  await waitFor(() => t.logs().some((l) => l.event_type === 'service_output' && l.msg === 'a warning'), {
    message: 'stderr line',
  });
  const out = t.logs().filter((l) => l.event_type === 'service_output');
  assert.ok(out.some((l) => l.msg === 'model loaded' && l.stream === 'stdout' && l.service_id === 'svc'));
  assert.ok(out.every((l) => l.service_id === 'svc'));
});

test('a full queue answers 503 HESTIA_QUEUE_FULL with Retry-After at once', async () => {
  const port = await freePort();
  const gate = tmp.path('full.gate');
  const t = start({ svc: fixtureService(port, ['--fail-health-until-file', gate], { queue_size: 2 }) });
  const s = svc(t);
  const waiting = [s.acquire(), s.acquire()];
  await assert.rejects(s.acquire(), (err: unknown) => {
    isCode('HESTIA_QUEUE_FULL')(err);
    const e = err as HestiaError;
    assert.equal(e.status, 503);
    assert.match(e.headers['Retry-After'] ?? '', /^[1-9]\d*$/);
    return true;
  });
  assert.equal(t.events.of('queue_rejected').length, 1);
  assert.equal(s.status().queuePending, 2);
  // A flood of rejections is reported in throttled events whose counts add up.
  const flood = await Promise.allSettled(Array.from({ length: 50 }, () => s.acquire()));
  assert.ok(flood.every((r) => r.status === 'rejected'));
  await waitFor(() => t.events.of('queue_rejected').reduce((n, e) => n + Number(e.details.count), 0) === 51, {
    message: 'all 51 rejections counted',
  });
  assert.ok(t.events.of('queue_rejected').length < 51, 'fewer events than rejections');
  writeFileSync(gate, '');
  const leases = await Promise.all(waiting);
  assert.equal(leases.length, 2);
  for (const l of leases) l.release();
});

test('a request that waited request_timeout_seconds gets 504; the start goes on', async () => {
  const port = await freePort();
  const gate = tmp.path('deadline.gate');
  const t = start({ svc: fixtureService(port, ['--fail-health-until-file', gate], { request_timeout_seconds: 1 }) });
  const s = svc(t);
  await assert.rejects(s.acquire(), (err: unknown) => {
    isCode('HESTIA_QUEUE_TIMEOUT')(err);
    const e = err as HestiaError;
    assert.equal(e.status, 504);
    // The error explains itself: what the service was doing when the deadline passed.
    assert.equal(e.details.state, 'starting');
    assert.equal(e.details.lastHealth, 'status 503');
    assert.match(e.message, /it is starting \(health_url last answered: status 503\)/);
    return true;
  });
  assert.equal(t.events.of('queue_timeout').length, 1);
  assert.equal(s.state, 'starting', 'the start is not cancelled by the timeout');
  writeFileSync(gate, '');
  await t.events.nth('service_ready', 1);
  assert.equal(s.state, 'hot');
});

test('a client that leaves the queue is removed from it; the start is not cancelled', async () => {
  const port = await freePort();
  const gate = tmp.path('abort.gate');
  const t = start({ svc: fixtureService(port, ['--fail-health-until-file', gate]) });
  const s = svc(t);
  const ac = new AbortController();
  const leaving = s.acquire({ signal: ac.signal });
  const staying = s.acquire();
  assert.equal(s.status().queuePending, 2);
  ac.abort(new Error('client disconnected'));
  await assert.rejects(leaving, /client disconnected/);
  assert.equal(s.status().queuePending, 1);
  assert.equal(s.state, 'starting');
  writeFileSync(gate, '');
  const lease = await staying;
  assert.equal(lease.coldStart, true);
  lease.release();
});

test('a crash makes the service cold (service_crashed); the next request restarts it', async () => {
  const port = await freePort();
  const pids = tmp.path('crash.pids');
  const t = start({ svc: fixtureService(port, ['--record-pid', pids]) });
  const s = svc(t);
  (await s.acquire()).release();
  const [first] = readPids(pids);
  assert.ok(first);
  process.kill(first, 'SIGKILL');
  const crashed = await t.events.nth('service_crashed', 1);
  assert.match(String(crashed.details.reason), /SIGKILL/);
  assert.equal(s.state, 'cold');
  const lease = await s.acquire();
  assert.equal(lease.coldStart, true);
  lease.release();
  assert.equal(readPids(pids).length, 2);
  assert.equal(s.state, 'hot');
});

test('a start that fails twice (retry_count 2) fails every waiter with 503 attempts:2 and the reason', async () => {
  const port = await freePort();
  const pids = tmp.path('retry.pids');
  const t = start({
    svc: fixtureService(
      port,
      [
        '--record-pid',
        pids,
        '--boot-ms',
        '60000',
        '--exit-after-ms',
        '50',
        '--exit-code',
        '3',
        '--stderr',
        'boom: no GPU',
      ],
      // No start backoff here: the next request must try afresh (the backoff: test/visibility/).
      { retry_count: 2, retry_delay_ms: 10, start_backoff_ms: 0 },
    ),
  });
  const s = svc(t);
  const results = await Promise.allSettled([s.acquire(), s.acquire()]);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    const err = (r as PromiseRejectedResult).reason as HestiaError;
    isCode('HESTIA_START_FAILED')(err);
    const body = err.toBody();
    assert.equal(err.status, 503);
    assert.equal(body.serviceId, 'svc');
    assert.equal(body.attempts, 2);
    assert.equal(typeof body.retry_after_ms, 'number');
    assert.match(String(body.reason), /exited with code 3/);
    assert.match(String(body.reason), /boom: no GPU/);
  }
  assert.equal(readPids(pids).length, 2, 'two attempts launched');
  const failed = t.events.of('service_start_failed');
  assert.equal(failed.length, 1);
  assert.match(String(failed[0]?.details.reason), /boom: no GPU/);
  assert.equal(s.state, 'cold');
  // The next request tries afresh (start_backoff_ms: 0).
  await assert.rejects(s.acquire(), isCode('HESTIA_START_FAILED'));
  assert.equal(readPids(pids).length, 4);
});

test('a child that exits during the start fails it at once, not at start_timeout_ms', async () => {
  const port = await freePort();
  const t = start({
    svc: fixtureService(port, ['--boot-ms', '600000', '--exit-after-ms', '100', '--exit-code', '7'], {
      start_timeout_ms: 600_000,
      request_timeout_seconds: 600,
    }),
  });
  await assert.rejects(svc(t).acquire(), (err: unknown) => {
    isCode('HESTIA_START_FAILED')(err);
    assert.match(String((err as HestiaError).details.reason), /exited with code 7 during the start/);
    return true;
  });
});

test('a start that is not ready within start_timeout_ms fails with HESTIA_START_TIMEOUT and is cleaned up', async () => {
  const port = await freePort();
  const pids = tmp.path('timeout.pids');
  const gate = tmp.path('timeout.gate');
  const t = start({
    svc: fixtureService(port, ['--record-pid', pids, '--fail-health-until-file', gate], { start_timeout_ms: 500 }),
  });
  await assert.rejects(svc(t).acquire(), (err: unknown) => {
    isCode('HESTIA_START_TIMEOUT')(err);
    // The last health answer is a 503 from the gated child, or a refused connection if a slow
    // machine had not even let it listen yet: either way the reason says what it last saw.
    assert.match(
      String((err as HestiaError).details.reason),
      /not ready within 500 ms \(start_timeout_ms\); health_url last answered: (.*status 503|.*ECONNREFUSED)/,
    );
    return true;
  });
  const [pid] = readPids(pids);
  assert.ok(pid);
  assert.equal(isAlive(pid), false, 'the timed-out child was stopped');
});

test('idle: stopped after idle_timeout_ms with nothing in flight (idle_shutdown, then cold)', async () => {
  const port = await freePort();
  const pids = tmp.path('idle.pids');
  const t = start({ svc: fixtureService(port, ['--record-pid', pids], { idle_timeout_ms: 300 }) });
  const s = svc(t);
  (await s.acquire()).release();
  assert.equal(typeof s.status().idleRemainingMs, 'number');
  const idle = await t.events.nth('idle_shutdown', 1);
  assert.equal(idle.serviceId, 'svc');
  await t.events.nth('service_stopped', 1);
  assert.equal(s.state, 'cold');
  assert.equal(isAlive(readPids(pids)[0] ?? 0), false);
});

test('idle: never stopped while a lease (a long stream) is held; the clock starts at release', async () => {
  const port = await freePort();
  const t = start({ svc: fixtureService(port, [], { idle_timeout_ms: 150 }) });
  const s = svc(t);
  const lease = await s.acquire();
  assert.equal(s.status().idleRemainingMs, null, 'no idle timer while in flight');
  await sleep(600); // four idle periods with the lease held
  assert.equal(s.state, 'hot');
  assert.equal(t.events.of('idle_shutdown').length, 0);
  lease.release();
  await t.events.nth('idle_shutdown', 1);
});

test('idle: Lease.touch() after release re-arms the idle clock (WebSocket activity)', async () => {
  const port = await freePort();
  const t = start({ svc: fixtureService(port, [], { idle_timeout_ms: 60_000 }) });
  const s = svc(t);
  const lease = await s.acquire();
  lease.release();
  await sleep(100);
  const before = s.status().idleRemainingMs as number;
  lease.touch();
  const afterTouch = s.status().idleRemainingMs as number;
  assert.ok(afterTouch > before, `re-armed: ${afterTouch} > ${before}`);
  // A new acquire disarms it.
  const l2 = await s.acquire();
  assert.equal(s.status().idleRemainingMs, null);
  l2.release();
});

test('busy_check postpones the idle stop while the service says it is busy', async () => {
  const port = await freePort();
  const busy = tmp.path('busy.flag');
  writeFileSync(busy, '');
  const t = start({
    svc: fixtureService(port, ['--busy-file', busy], {
      idle_timeout_ms: 150,
      busy_check: { url: `http://127.0.0.1:${port}/busy`, json_path: 'busy', equals: true },
    }),
  });
  const s = svc(t);
  (await s.acquire()).release();
  await waitFor(() => t.logs().some((l) => l.event_type === 'idle_postponed'), { message: 'idle_postponed' });
  assert.equal(s.state, 'hot');
  assert.equal(t.events.of('idle_shutdown').length, 0);
  rmSync(busy);
  const ev = await t.events.nth('idle_shutdown', 1);
  assert.match(String(ev.details.busyCheck), /busy = false/);
});

test('regression (read, await, act): a busy check answered after new activity does not stop the service', async () => {
  const port = await freePort();
  const busy = tmp.path('race.busy');
  const hits = tmp.path('race.hits');
  const t = start({
    svc: fixtureService(port, ['--busy-file', busy, '--busy-hits', hits, '--busy-delay-ms', '300'], {
      idle_timeout_ms: 100,
      busy_check: { url: `http://127.0.0.1:${port}/busy`, json_path: 'busy', equals: true },
    }),
  });
  const s = svc(t);
  (await s.acquire()).release();
  // Check #1 has begun: the service was idle, and it will answer "not busy" 300 ms later.
  await waitFor(() => countLines(hits) >= 1, { message: 'the first busy check' });
  // Meanwhile a request comes and goes, and the service becomes busy.
  writeFileSync(busy, '');
  (await s.acquire()).release();
  // Check #2 (the new idle period) says "busy": postponed.
  await waitFor(() => t.logs().some((l) => l.event_type === 'idle_postponed'), { message: 'idle_postponed' });
  // Check #1's stale "not busy" arrived before check #2's answer, and was ignored.
  assert.equal(s.state, 'hot');
  assert.equal(t.events.of('idle_shutdown').length, 0);
  rmSync(busy);
  await t.events.nth('idle_shutdown', 1);
});

test('launcher none: "starting" waits for health_url; a stop only makes it cold', async () => {
  let ready = false;
  const up = await startUpstream(
    jsonHandler((path) =>
      path === '/health' ? { status: ready ? 200 : 503, body: {} } : { status: 200, body: { path } },
    ),
  );
  try {
    const t = start({
      svc: {
        base_url: `http://127.0.0.1:${up.port}`,
        health_url: `http://127.0.0.1:${up.port}/health`,
        health_interval_ms: 20,
      },
    });
    const s = svc(t);
    const pending = s.acquire();
    await waitFor(() => up.hits.includes('GET /health'), { message: 'a health probe' });
    assert.equal(s.state, 'starting');
    ready = true;
    const lease = await pending;
    assert.equal(lease.coldStart, true);
    lease.release();
    assert.equal(s.stop('test'), true);
    await t.events.nth('service_stopped', 1);
    assert.equal(s.state, 'cold');
    const res = await fetch(`http://127.0.0.1:${up.port}/still-up`);
    assert.equal(res.status, 200, 'the none launcher stops nothing');
  } finally {
    await up.close();
  }
});

test('without health_url, readiness is warmup_ms after the launch', async () => {
  const t = start({ svc: { base_url: 'http://127.0.0.1:9', warmup_ms: 400 } });
  const s = svc(t);
  const pending = s.acquire();
  await sleep(100); // a quarter of the warm-up: it cannot be ready yet
  assert.equal(s.state, 'starting');
  const lease = await pending;
  assert.equal(lease.coldStart, true);
  assert.equal(s.state, 'hot');
  lease.release();
});

test('a cold start grants its queue in arrival order, in batches (the first alone), each lease counted exactly once', async () => {
  const n = GRANT_BATCH * 3 + 5;
  const t = start({ svc: { base_url: 'http://127.0.0.1:9', warmup_ms: 30, queue_size: 1000 } });
  const s = svc(t);
  const order: number[] = [];
  let late: Promise<Lease> | null = null;
  let atFirstGrant: { inflight: number; queuePending: number; overtook: boolean } | null = null;
  let atSecondBatch: number | null = null;
  const waiters = Array.from({ length: n }, (_, i) =>
    s.acquire().then((lease) => {
      order.push(i);
      if (i === 0) {
        // Runs right after the first grant after the start: only the first (lone) waiter is
        // leased, the rest still queued, and nobody may overtake them (tryAcquire) before
        // later batches.
        const st = s.status();
        const sneaky = s.tryAcquire();
        atFirstGrant = { inflight: st.inflight, queuePending: st.queuePending, overtook: sneaky !== null };
        sneaky?.release();
        late = s.acquire().then((l) => {
          order.push(n);
          return l;
        });
      }
      if (i === FIRST_GRANT_AFTER_START) atSecondBatch = s.status().inflight;
      return lease;
    }),
  );
  assert.equal(s.status().queuePending, n);
  const leases = await Promise.all(waiters);
  // Right after the start one request goes out alone; then whole batches.
  assert.deepEqual(atFirstGrant, {
    inflight: FIRST_GRANT_AFTER_START,
    queuePending: n - FIRST_GRANT_AFTER_START,
    overtook: false,
  });
  assert.equal(atSecondBatch, FIRST_GRANT_AFTER_START + GRANT_BATCH);
  assert.ok(late, 'a request arrived between batches');
  leases.push(await (late as Promise<Lease>));
  assert.deepEqual(
    order,
    Array.from({ length: n + 1 }, (_, i) => i),
  );
  assert.equal(s.status().inflight, n + 1);
  assert.equal(s.status().queuePending, 0);
  assert.equal(t.events.of('service_start').length, 1);
  for (const l of leases) l.release();
  for (const l of leases) l.release(); // extra releases are ignored
  assert.equal(s.status().inflight, 0);
});

test("a cold start's second batch waits for the event loop's I/O: the first request's socket is served first", async () => {
  // A connected pair of real sockets. Data written on one end right after the first batch is
  // granted is readable on the other at the loop's next poll phase: the second batch must not
  // have been granted by then (it used to run in the check phase before that poll).
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const [[peer]] = await Promise.all([once(server, 'connection') as Promise<[Socket]>, once(client, 'connect')]);
  // Ready when the health probe's answer arrives: an I/O callback, as in a real cold start (a
  // ready by timer would leave the loop's poll phase between it and the check phase).
  const up = await startUpstream();
  try {
    const n = GRANT_BATCH * 2 + 1;
    const t = start({ svc: { base_url: up.url, health_url: `${up.url}/health`, queue_size: 100 } });
    const s = svc(t);
    let granted = 0;
    const readAt = new Promise<number>((resolve) => peer.once('data', () => resolve(granted)));
    const waiters = Array.from({ length: n }, (_, i) =>
      s.acquire().then((lease) => {
        granted++;
        if (i === 0) client.write('x');
        return lease;
      }),
    );
    assert.equal(await readAt, FIRST_GRANT_AFTER_START, 'only the first request was granted when the I/O was served');
    const leases = await Promise.all(waiters);
    assert.equal(granted, n);
    for (const l of leases) l.release();
  } finally {
    client.destroy();
    peer.destroy();
    server.close();
    await up.close();
  }
});

test('max_concurrency: requests beyond it wait in the queue and get the released slot in order', async () => {
  const t = start({ svc: { base_url: 'http://127.0.0.1:9', max_concurrency: 1 } });
  const s = svc(t);
  const first = await s.acquire();
  const order: string[] = [];
  const second = s.acquire().then((l) => {
    order.push('second');
    return l;
  });
  const third = s.acquire().then((l) => {
    order.push('third');
    return l;
  });
  assert.equal(s.tryAcquire(), null);
  assert.equal(s.status().queuePending, 2);
  first.release();
  const l2 = await second;
  assert.equal(s.status().queuePending, 1);
  assert.equal(l2.coldStart, false);
  l2.release();
  (await third).release();
  assert.deepEqual(order, ['second', 'third']);
});

test('a stop while starting cancels the start: waiters get 503, the child is stopped', async () => {
  const port = await freePort();
  const gate = tmp.path('cancel.gate');
  const pids = tmp.path('cancel.pids');
  const t = start({ svc: fixtureService(port, ['--record-pid', pids, '--fail-health-until-file', gate]) });
  const s = svc(t);
  const waiting = s.acquire();
  await waitFor(() => readPids(pids).length === 1, { message: 'the launch' });
  assert.equal(s.stop('test'), true);
  assert.equal(s.stop('again'), false, 'already stopping → 409');
  await assert.rejects(waiting, isCode('HESTIA_START_FAILED'));
  await t.events.nth('service_stopped', 1);
  assert.equal(s.state, 'cold');
  await waitFor(() => !isAlive(readPids(pids)[0] ?? 0), { message: 'the child to be gone' });
  assert.equal(t.events.of('service_start_failed').length, 0, 'a cancelled start is a stop, not a failure');
});

test('a request during stopping waits for the stop, then starts the service again', async () => {
  const port = await freePort();
  const pids = tmp.path('restart.pids');
  const t = start({
    svc: fixtureService(port, [], {
      launcher: {
        type: 'process',
        command: fixtureArgv('--record-pid', pids, '--ignore-sigterm'),
        stop_timeout_ms: 300,
      },
    }),
  });
  const s = svc(t);
  (await s.acquire()).release();
  assert.equal(s.stop('test'), true);
  assert.equal(s.state, 'stopping');
  const lease: Lease = await s.acquire();
  assert.equal(lease.coldStart, true);
  lease.release();
  const types = t.events.events.map((e) => e.type);
  assert.deepEqual(types.slice(types.indexOf('service_stop')), [
    'service_stop',
    'service_stopped',
    'service_start',
    'service_ready',
  ]);
  const [a, b] = readPids(pids);
  assert.ok(a && b && a !== b);
  assert.equal(isAlive(a), false, 'the SIGTERM-ignoring child was SIGKILLed');
});

test('start() and stop() report 409 cases: start while hot/starting, stop while cold', async () => {
  const t = start({ svc: { base_url: 'http://127.0.0.1:9', warmup_ms: 50 } });
  const s = svc(t);
  assert.equal(s.stop('x'), false);
  assert.equal(s.start('x'), true);
  assert.equal(s.start('x'), false);
  await t.events.nth('service_ready', 1);
  assert.equal(s.start('x'), false);
  assert.equal(s.status().readiness, 'ready');
});

test('shutdown: queued waiters get 503 HESTIA_SHUTTING_DOWN and new requests are refused', async () => {
  const port = await freePort();
  const gate = tmp.path('shutdown.gate');
  const pids = tmp.path('shutdown.pids');
  const t = start({ svc: fixtureService(port, ['--record-pid', pids, '--fail-health-until-file', gate]) });
  const s = svc(t);
  const waiting = s.acquire();
  await waitFor(() => readPids(pids).length === 1, { message: 'the launch' });
  const closing = t.registry.close();
  await assert.rejects(waiting, isCode('HESTIA_SHUTTING_DOWN'));
  await assert.rejects(s.acquire(), isCode('HESTIA_SHUTTING_DOWN'));
  await closing;
  assert.equal(isAlive(readPids(pids)[0] ?? 0), false);
});

test('reload: new settings apply without dropping requests; a changed launcher is used from the next start', async () => {
  const port = await freePort();
  const oldPids = tmp.path('reload-old.pids');
  const newPids = tmp.path('reload-new.pids');
  const gate = tmp.path('reload.gate');
  const gonePids = tmp.path('reload-gone.pids');
  const t = start({
    svc: fixtureService(port, ['--record-pid', oldPids]),
    gone: fixtureService(await freePort(), ['--fail-health-until-file', gate, '--record-pid', gonePids]),
  });
  const s = svc(t);
  const held = await s.acquire();
  const queuedOnGone = svc(t, 'gone').acquire();
  await waitFor(() => svc(t, 'gone').status().queuePending === 1, { message: 'a waiter on gone' });
  await waitFor(() => readPids(gonePids).length === 1, { message: 'gone launched' });

  const next = configFrom({
    services: {
      svc: fixtureService(port, ['--record-pid', newPids], { idle_timeout_ms: 200 }),
      added: { base_url: 'http://127.0.0.1:9', warmup_ms: 10 },
    },
  });
  t.registry.reconfigure(next);
  // The removed service fails its queued request and is no longer listed.
  await assert.rejects(queuedOnGone, /removed from the configuration/);
  assert.deepEqual(t.registry.ids().sort(), ['added', 'svc']);
  await waitFor(() => !isAlive(readPids(gonePids)[0] ?? 0), { message: "the removed service's child to be stopped" });
  assert.equal(t.registry.get('added')?.state, 'cold');
  // The held request is untouched; the new idle period applies once it ends.
  assert.equal(s.state, 'hot');
  held.release();
  await t.events.nth('idle_shutdown', 1);
  await t.events.nth('service_stopped', 1);
  assert.equal(readPids(oldPids).length, 1);
  // The next start uses the new launcher block.
  (await s.acquire()).release();
  assert.equal(readPids(newPids).length, 1);
  assert.equal(readPids(oldPids).length, 1);
});
