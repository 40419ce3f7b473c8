/**
 * Capacity (SPEC §6) with real child processes on the gateway's own machine: a start that
 * does not fit stops the least recently used idle service there — never one with a request in
 * flight, never one whose busy_check says busy — through that service's own stop; concurrent
 * starts never run more than fits (the synchronous reservation is the guard); no room anywhere
 * → HESTIA_NO_CAPACITY; no room here → the next machine.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { HestiaError } from '../../src/errors.ts';
import type { Lease } from '../../src/services/types.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { countLines, fixtureService, readPids, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { namedHandler, startUpstream, type Upstream } from '../helpers/upstream.ts';
import { type MachineRegistry, machineRegistry } from './helpers.ts';

const GPU = (mb: number) => ({ requires: { gpu_mem_mb: mb } });

async function rejection(p: Promise<unknown>): Promise<HestiaError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof HestiaError, `expected a HestiaError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

async function use(mr: MachineRegistry, id: string): Promise<void> {
  const rt = mr.registry.get(id);
  assert.ok(rt);
  (await rt.acquire()).release();
}

describe('capacity eviction on one machine', () => {
  const tmp = tempDir();
  let mr: MachineRegistry;
  const pidFile = (id: string) => tmp.path(`${id}.pids`);

  before(async () => {
    const services: Record<string, unknown> = {};
    for (const id of ['a', 'b', 'c', 'd'])
      services[id] = fixtureService(await freePort(), ['--record-pid', pidFile(id)], {
        ...GPU(50),
        // d does not wait for busy services to make room (swapping: test/models/model-swap.test.ts).
        ...(id === 'd' ? { capacity_wait_ms: 0 } : {}),
      });
    mr = machineRegistry({ machines: { local: { host: '127.0.0.1', capacity: { gpu_mem_mb: 100 } } }, services });
  });
  after(async () => {
    await mr?.close();
    tmp.cleanup();
  });

  const state = (id: string) => mr.registry.get(id)?.state;

  test('a start that does not fit stops the least recently used idle service, through its own stop', async () => {
    await use(mr, 'a');
    await use(mr, 'b'); // used after a: a is the least recently used
    await use(mr, 'c');
    const ev = mr.events.of('capacity_eviction');
    assert.equal(ev.length, 1);
    assert.equal(ev[0]?.serviceId, 'a');
    assert.equal(ev[0]?.machineId, 'local');
    assert.deepEqual(
      { victim: ev[0]?.details.victim, forService: ev[0]?.details.forService, freed: ev[0]?.details.freed },
      { victim: 'a', forService: 'c', freed: { gpu_mem_mb: 50 } },
    );
    // The victim went hot → stopping → cold like any stop (cause `evicted`), before c launched.
    const stop = mr.events.of('service_stop', 'a')[0];
    assert.equal(stop?.details.cause, 'evicted');
    const idx = (t: string, id: string) => mr.events.events.findIndex((e) => e.type === t && e.serviceId === id);
    assert.ok(idx('service_stopped', 'a') < idx('service_ready', 'c'), 'a was cold before c became ready');
    assert.deepEqual([state('a'), state('b'), state('c')], ['cold', 'hot', 'hot']);
  });

  test('a service with a request in flight is never evicted, even when it is the least recently used', async () => {
    const b = mr.registry.get('b');
    assert.ok(b);
    const held: Lease = await b.acquire(); // b in flight, used before c below
    await use(mr, 'c');
    await use(mr, 'a'); // needs room: b is LRU but in flight → c goes
    const victims = mr.events.of('capacity_eviction').map((e) => e.details.victim);
    assert.deepEqual(victims, ['a', 'c']);
    assert.deepEqual([state('a'), state('b'), state('c')], ['hot', 'hot', 'cold']);
    // The held request still reaches b.
    const r = await fetch(`${held.baseUrl}/ping`);
    assert.equal(r.status, 200);
    held.release();
  });

  test('nothing idle to stop and capacity_wait_ms 0: HESTIA_NO_CAPACITY, and the busy services keep running', async () => {
    const leases = await Promise.all(['a', 'b'].map((id) => mr.registry.get(id)?.acquire() as Promise<Lease>));
    const err = await rejection(mr.registry.get('d')?.acquire() as Promise<Lease>);
    assert.equal(err.code, 'HESTIA_NO_CAPACITY');
    assert.equal(err.status, 503);
    assert.match(err.message, /no machine has room for service 'd' \(tried local\)/);
    assert.match(err.message, /gpu_mem_mb 50 short, held by .*a \(gpu_mem_mb 50; hot\)/);
    assert.match(err.message, /b \(gpu_mem_mb 50; hot\)/);
    assert.deepEqual([state('a'), state('b'), state('d')], ['hot', 'hot', 'cold']);
    assert.equal(countLines(pidFile('d')), 0, 'd was never launched');
    for (const l of leases) l.release();
  });
});

describe('capacity and busy_check', () => {
  const tmp = tempDir();
  let mr: MachineRegistry;
  const busyFile = tmp.path('busy');

  before(async () => {
    const xPort = await freePort();
    mr = machineRegistry({
      machines: { local: { host: '127.0.0.1', capacity: { gpu_mem_mb: 100 } } },
      services: {
        x: fixtureService(xPort, ['--busy-file', busyFile], {
          ...GPU(100),
          busy_check: { url: `http://127.0.0.1:${xPort}/busy`, json_path: 'busy', equals: true },
        }),
        y: fixtureService(await freePort(), [], GPU(100)),
      },
    });
  });
  after(async () => {
    await mr?.close();
    tmp.cleanup();
  });

  test('an idle service whose busy_check says busy is not evicted; once not busy, it is', async () => {
    await use(mr, 'x');
    writeFileSync(busyFile, '1');
    const err = await rejection(mr.registry.get('y')?.acquire() as Promise<Lease>);
    assert.equal(err.code, 'HESTIA_NO_CAPACITY');
    assert.match(err.message, /x \(gpu_mem_mb 100; busy: /);
    assert.equal(mr.registry.get('x')?.state, 'hot');
    rmSync(busyFile);
    await use(mr, 'y');
    assert.equal(mr.registry.get('x')?.state, 'cold');
    assert.deepEqual(
      mr.events.of('capacity_eviction').map((e) => e.details.victim),
      ['x'],
    );
  });
});

describe('concurrent starts never exceed capacity', () => {
  const tmp = tempDir();
  let mr: MachineRegistry;
  const ids = ['r1', 'r2', 'r3', 'r4'];
  /** Most services hot or stopping at once, sampled on every event (each needs 60 of 100). */
  let maxRunning = 0;

  before(async () => {
    const services: Record<string, unknown> = {};
    // capacity_wait_ms 0: a start that would have to wait for a busy (or starting) holder
    // fails at once; waiting for it (swapping) is test/models/model-swap.test.ts.
    for (const id of ids)
      services[id] = fixtureService(await freePort(), ['--record-pid', tmp.path(`${id}.pids`)], {
        ...GPU(60),
        capacity_wait_ms: 0,
      });
    mr = machineRegistry({ machines: { local: { host: '127.0.0.1', capacity: { gpu_mem_mb: 100 } } }, services });
  });
  after(async () => {
    await mr?.close();
    tmp.cleanup();
  });

  const sample = () => {
    const n = mr.registry.all().filter((rt) => rt.state === 'hot' || rt.state === 'stopping').length;
    maxRunning = Math.max(maxRunning, n);
  };

  test('four cold services requested at once: exactly one starts, the others get HESTIA_NO_CAPACITY', async () => {
    const results = await Promise.allSettled(ids.map((id) => mr.registry.get(id)?.acquire() as Promise<Lease>));
    const ok = results.filter((r): r is PromiseFulfilledResult<Lease> => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(ok.length, 1);
    assert.deepEqual(
      refused.map((r) => (r.reason as HestiaError).code),
      ['HESTIA_NO_CAPACITY', 'HESTIA_NO_CAPACITY', 'HESTIA_NO_CAPACITY'],
    );
    const launches = ids.map((id) => countLines(tmp.path(`${id}.pids`)));
    assert.equal(
      launches.reduce((a, b) => a + b, 0),
      1,
      `one launch in all (${launches.join(',')})`,
    );
    for (const r of ok) r.value.release();
  });

  test('two starts racing to evict the same idle service: one wins, never two running at once', async () => {
    const winner = mr.registry.all().find((rt) => rt.state === 'hot');
    assert.ok(winner);
    const others = mr.registry.all().filter((rt) => rt !== winner);
    // Sample the number of running services on every lifecycle event of the race.
    maxRunning = 0;
    mr.bus.on('event', sample);
    const results = await Promise.allSettled(others.slice(0, 2).map((rt) => rt.acquire()));
    mr.bus.off('event', sample);
    const ok = results.filter((r): r is PromiseFulfilledResult<Lease> => r.status === 'fulfilled');
    assert.equal(ok.length, 1, 'exactly one of the racing starts succeeded');
    const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.ok(refused);
    assert.equal((refused.reason as HestiaError).code, 'HESTIA_NO_CAPACITY');
    assert.equal(winner.state, 'cold', 'the idle winner of the first race was evicted');
    assert.equal(mr.events.of('capacity_eviction').length, 1);
    assert.ok(maxRunning <= 1, `at most one service running at any event (saw ${maxRunning})`);
    for (const r of ok) r.value.release();
  });
});

describe('no room: next machine, else 503 HESTIA_NO_CAPACITY over HTTP', () => {
  let gw: TestGateway;
  let up: Upstream;

  before(async () => {
    up = await startUpstream(namedHandler('m3'), { host: '127.0.0.3' });
    const svc = (extra: Record<string, unknown>) => ({
      base_url: `http://{host}:${up.port}`,
      health_url: `http://{host}:${up.port}/health`,
      health_interval_ms: 20,
      ...extra,
    });
    gw = await startTestGateway({
      machines: {
        // local's capacity is tiny; m3 declares none (not limited).
        local: { host: '127.0.0.1', capacity: { gpu_mem_mb: 10 } },
        m3: { host: '127.0.0.3' },
        small: { host: '127.0.0.3', capacity: { gpu_mem_mb: 20 } },
      },
      services: {
        spills: svc({ machines: ['local', 'm3'], ...GPU(50) }),
        toobig: svc({ machines: ['local', 'small'], ...GPU(50) }),
      },
    });
  });
  after(async () => {
    await gw?.close();
    await up?.close();
  });

  test('a service that does not fit on its first machine runs on the next', async () => {
    const r = await fetch(`${gw.url}/services/spills/x`);
    assert.equal(r.status, 200);
    assert.deepEqual(await r.json(), { machine: 'm3', path: '/x' });
  });

  test('no machine has room: 503 HESTIA_NO_CAPACITY with every machine and why', async () => {
    const r = await fetch(`${gw.url}/services/toobig/x`);
    assert.equal(r.status, 503);
    const body = (await r.json()) as Record<string, unknown>;
    assert.equal(body.code, 'HESTIA_NO_CAPACITY');
    assert.deepEqual(body.machines, ['local', 'small']);
    assert.match(String(body.error), /machine 'small' has only gpu_mem_mb 20 in total/);
    assert.ok(r.headers.get('retry-after'));
    const machines = (await (await fetch(`${gw.url}/v1/machines`)).json()) as {
      machines: Array<{ id: string; capacity: unknown; free: unknown; allocation: Array<Record<string, unknown>> }>;
    };
    const m3 = machines.machines.find((m) => m.id === 'm3');
    assert.deepEqual(
      m3?.allocation.map((a) => [a.serviceId, a.requires]),
      [['spills', { gpu_mem_mb: 50 }]],
    );
    const local = machines.machines.find((m) => m.id === 'local');
    assert.deepEqual([local?.capacity, local?.free, local?.allocation], [{ gpu_mem_mb: 10 }, { gpu_mem_mb: 10 }, []]);
  });
});

describe('a reservation lives exactly as long as the service is not cold', () => {
  const tmp = tempDir();
  let mr: MachineRegistry;
  const gate = tmp.path('ready');

  before(async () => {
    mr = machineRegistry({
      machines: { local: { host: '127.0.0.1', capacity: { gpu_mem_mb: 100 } } },
      services: {
        // Not ready until the test creates `gate`: a start that stays "starting".
        slow: fixtureService(await freePort(), ['--fail-health-until-file', gate], GPU(70)),
        // capacity_wait_ms 0: it does not wait for the starting service to make room (swapping).
        crashy: fixtureService(await freePort(), ['--record-pid', tmp.path('crashy.pids')], {
          ...GPU(70),
          capacity_wait_ms: 0,
        }),
      },
    });
  });
  after(async () => {
    await mr?.close();
    tmp.cleanup();
  });

  const allocation = () =>
    (mr.machines().find((m) => m.id === 'local')?.allocation ?? []).map((a) => [a.serviceId, a.state]);

  test('reserved as soon as the start chose the machine; released when a stop cancels the start', async () => {
    const slow = mr.registry.get('slow');
    assert.ok(slow);
    const waiting = slow.acquire();
    await mr.events.nth('service_start', 1);
    assert.deepEqual(allocation(), [['slow', 'starting']]);
    // The room is taken while it starts: another service cannot have it.
    const err = await rejection(mr.registry.get('crashy')?.acquire() as Promise<Lease>);
    assert.equal(err.code, 'HESTIA_NO_CAPACITY');
    assert.equal(slow.stop('test'), true);
    await rejection(waiting);
    await mr.events.nth('service_stopped', 1);
    assert.deepEqual(allocation(), []);
  });

  test('released when the service crashes', async () => {
    const crashy = mr.registry.get('crashy');
    assert.ok(crashy);
    (await crashy.acquire()).release();
    assert.deepEqual(allocation(), [['crashy', 'hot']]);
    // Killed behind the gateway's back (not its stop): a crash.
    const [pid] = readPids(tmp.path('crashy.pids'));
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await mr.events.nth('service_crashed', 1);
    assert.deepEqual(allocation(), []);
  });
});
