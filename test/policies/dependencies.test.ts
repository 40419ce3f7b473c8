/**
 * `depends_on` with real process services (test/fixtures/lifecycle-upstream.mjs): a chain
 * a → b → c (a depends on b, b on c) started by one request to a, stopped in reverse, taken
 * down by a crash of c, and failing with the name of a dependency that cannot start.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HestiaError } from '../../src/errors.ts';
import { configFrom } from '../helpers/gateway.ts';
import { closedAfterEachTest, fixtureService, isAlive, type TestRegistry } from '../helpers/lifecycle.ts';
import { freePort, refusedPort } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';
import { policyRegistry, sequence } from './helpers.ts';

const { keep } = closedAfterEachTest();

async function chain(extra: Record<string, Record<string, unknown>> = {}, flags: Record<string, string[]> = {}) {
  const [pa, pb, pc] = [await freePort(), await freePort(), await freePort()];
  return keep(
    policyRegistry({
      a: fixtureService(pa, flags.a ?? [], { depends_on: ['b'], ...extra.a }),
      b: fixtureService(pb, flags.b ?? [], { depends_on: ['c'], ...extra.b }),
      c: fixtureService(pc, flags.c ?? [], extra.c ?? {}),
    }),
  );
}

function rt(t: TestRegistry, id: string) {
  const s = t.registry.get(id);
  assert.ok(s, id);
  return s;
}

/** The pid of `id`'s last launch (its service_ready event carries the launcher's info). */
function pidOf(t: TestRegistry, id: string): number {
  const pid = t.events.of('service_ready', id).at(-1)?.details.pid;
  assert.equal(typeof pid, 'number', `pid of ${id}`);
  return pid as number;
}

/** The order in which the services' processes were spawned (from their `service_process_spawned` log lines). */
function spawnOrder(t: TestRegistry): string[] {
  return t
    .logs()
    .filter((l) => l.event_type === 'service_process_spawned')
    .map((l) => String(l.service_id));
}

test('one request to a cold a starts c, then b, then a, each ready before the next launches', async () => {
  const t = await chain({}, { c: ['--boot-ms', '150'], b: ['--boot-ms', '50'] });
  const lease = await rt(t, 'a').acquire();
  lease.release();
  assert.deepEqual(spawnOrder(t), ['c', 'b', 'a']);
  assert.deepEqual(sequence(t, ['service_ready']), ['service_ready:c', 'service_ready:b', 'service_ready:a']);
  // Each launch came after its dependency was ready: b's spawn line follows c's service_ready.
  const spawned = t.logs().find((l) => l.event_type === 'service_process_spawned' && l.service_id === 'b');
  const spawnB = typeof spawned?.time === 'number' ? spawned.time : Date.parse(String(spawned?.time));
  assert.ok(spawnB >= t.events.of('service_ready', 'c')[0]!.ts, `b spawned at ${spawnB}`);
  assert.equal(t.events.of('service_start').length, 3, 'one start each');
  for (const id of ['a', 'b', 'c']) assert.equal(rt(t, id).state, 'hot');
  const st = rt(t, 'b').status();
  assert.deepEqual(st.dependsOn, ['c']);
  assert.deepEqual(st.dependents, ['a']);
});

test('idle stops run in reverse: a first, then b, then c; a dependency is not idle-stopped while its dependent is hot', async () => {
  // c and b have the shortest idle timeouts but are held up while their dependent is hot.
  const t = await chain({ a: { idle_timeout_ms: 600 }, b: { idle_timeout_ms: 100 }, c: { idle_timeout_ms: 100 } });
  (await rt(t, 'a').acquire()).release();
  await t.events.nth('service_stopped', 3, 20_000);
  assert.deepEqual(sequence(t, ['idle_shutdown']), ['idle_shutdown:a', 'idle_shutdown:b', 'idle_shutdown:c']);
  assert.deepEqual(sequence(t, ['service_stopped']), ['service_stopped:a', 'service_stopped:b', 'service_stopped:c']);
  // b and c really were due earlier, and said why they stayed up.
  const held = t.logs().filter((l) => l.event_type === 'idle_postponed');
  assert.ok(
    held.some((l) => l.service_id === 'b' && /dependent 'a' is (starting|hot)/.test(String(l.detail))),
    JSON.stringify(held),
  );
  assert.ok(held.some((l) => l.service_id === 'c' && /dependent 'b' is (starting|hot)/.test(String(l.detail))));
});

test('a crash of c stops b and a (a first), and the next request to a starts the chain again', async () => {
  const t = await chain();
  (await rt(t, 'a').acquire()).release();
  const pidC = rt(t, 'c').status().pid as number | undefined;
  const infoC = await fetch(`${(await rt(t, 'c').acquire()).baseUrl}/x`).then(
    (r) => r.json() as Promise<{ pid: number }>,
  );
  process.kill(pidC ?? infoC.pid, 'SIGKILL');
  await t.events.nth('service_crashed', 1);
  await waitFor(() => rt(t, 'a').state === 'cold' && rt(t, 'b').state === 'cold', { message: 'a and b cold' });
  assert.deepEqual(sequence(t, ['service_crashed', 'service_stopped']), [
    'service_crashed:c',
    'service_stopped:a',
    'service_stopped:b',
  ]);
  const stopB = t.events.of('service_stop', 'b')[0]!;
  assert.equal(stopB.details.cause, 'dependency');
  assert.equal(stopB.details.dependency, 'c');
  (await rt(t, 'a').acquire()).release();
  for (const id of ['a', 'b', 'c']) assert.equal(rt(t, id).state, 'hot');
});

test('an explicit stop of c stops a, then b, then c', async () => {
  const t = await chain();
  (await rt(t, 'a').acquire()).release();
  const pids = ['a', 'b', 'c'].map((id) => pidOf(t, id));
  for (const pid of pids) assert.equal(isAlive(pid), true);
  assert.equal(rt(t, 'c').stop('test'), true);
  await t.events.nth('service_stopped', 3);
  assert.deepEqual(sequence(t, ['service_stopped']), ['service_stopped:a', 'service_stopped:b', 'service_stopped:c']);
  for (const pid of pids) assert.equal(isAlive(pid), false);
});

test('a dependency that cannot start fails the dependent with an error naming it', async () => {
  const port = await freePort();
  const dbPort = await refusedPort();
  const t = keep(
    policyRegistry({
      web: fixtureService(port, [], { depends_on: ['db'] }),
      db: {
        base_url: `http://127.0.0.1:${dbPort}`,
        health_url: `http://127.0.0.1:${dbPort}/health`,
        launcher: { type: 'process', command: ['/bin/sh', '-c', 'echo "no data dir" >&2; exit 4'] },
      },
    }),
  );
  await assert.rejects(rt(t, 'web').acquire(), (err: unknown) => {
    assert.ok(err instanceof HestiaError);
    assert.equal(err.code, 'HESTIA_START_FAILED');
    assert.match(err.message, /dependency 'db' failed to start: .*no data dir/);
    return true;
  });
  assert.equal(rt(t, 'web').state, 'cold');
  assert.equal(spawnOrder(t).includes('web'), false, 'web never launched');
  const failed = t.events.of('service_start_failed', 'web')[0]!;
  assert.equal((failed.details.failures as Array<{ stage: string }>)[0]!.stage, 'dependency');
  assert.match(String(rt(t, 'web').status().lastError?.message), /dependency 'db'/);
});

test('a reload that adds depends_on takes effect at the next start', async () => {
  const [pw, pd] = [await freePort(), await freePort()];
  const web = fixtureService(pw, []);
  const db = fixtureService(pd, []);
  const t = keep(policyRegistry({ web, db }));
  (await rt(t, 'web').acquire()).release();
  assert.equal(rt(t, 'db').state, 'cold', 'no dependency yet');
  assert.equal(rt(t, 'web').stop('test'), true);
  await t.events.nth('service_stopped', 1);
  t.registry.reconfigure(configFrom({ services: { web: { ...web, depends_on: ['db'] }, db } }));
  (await rt(t, 'web').acquire()).release();
  assert.equal(rt(t, 'db').state, 'hot');
  assert.deepEqual(spawnOrder(t), ['web', 'db', 'web']);
});
