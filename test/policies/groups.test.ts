/**
 * `group`: members start together on the first request to any of them and are idle-stopped
 * together once every member is idle; and the coordination holds under load: 100 parallel
 * requests spread over a group's members and their dependencies cause exactly one start each.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closedAfterEachTest, fixtureService, readPids, type TestRegistry } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';
import { policyRegistry, sequence } from './helpers.ts';

const { tmp, keep } = closedAfterEachTest();

function rt(t: TestRegistry, id: string) {
  const s = t.registry.get(id);
  assert.ok(s, id);
  return s;
}

test('the first request to one member starts the whole group', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const t = keep(
    policyRegistry({
      comfyui: fixtureService(p1, [], { group: 'comfy' }),
      models: fixtureService(p2, ['--boot-ms', '100'], { group: 'comfy' }),
    }),
  );
  (await rt(t, 'comfyui').acquire()).release();
  await t.events.nth('service_ready', 2);
  assert.equal(rt(t, 'models').state, 'hot');
  const startModels = t.events.of('service_start', 'models')[0]!;
  assert.equal(startModels.details.cause, 'policy');
  assert.match(String(startModels.details.reason), /group 'comfy': 'comfyui' is starting/);
  assert.equal(t.events.of('service_start').length, 2);
  assert.deepEqual(rt(t, 'models').status().groupMembers, ['comfyui', 'models']);
});

test('a group is idle-stopped together, only when every member is idle', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const t = keep(
    policyRegistry({
      comfyui: fixtureService(p1, [], { group: 'comfy', idle_timeout_ms: 100 }),
      models: fixtureService(p2, [], { group: 'comfy', idle_timeout_ms: 100 }),
    }),
  );
  (await rt(t, 'comfyui').acquire()).release();
  // models is in use (a long request): comfyui's idle stop is due but held by the group.
  const busy = await rt(t, 'models').acquire();
  await waitFor(
    () =>
      t
        .logs()
        .some(
          (l) =>
            l.event_type === 'idle_postponed' &&
            l.service_id === 'comfyui' &&
            String(l.detail).includes("group 'comfy': member 'models' is in use"),
        ),
    { message: "comfyui's idle stop held by the group" },
  );
  assert.equal(rt(t, 'comfyui').state, 'hot');
  assert.equal(t.events.of('idle_shutdown').length, 0);
  const released = Date.now();
  busy.release();
  await t.events.nth('service_stopped', 2);
  assert.deepEqual(sequence(t, ['idle_shutdown']).sort(), ['idle_shutdown:comfyui', 'idle_shutdown:models']);
  for (const e of t.events.of('idle_shutdown')) assert.ok(e.ts >= released);
});

test('100 parallel requests to a group and its dependencies: exactly one start (and one process) each', async () => {
  const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const pid = (id: string) => tmp.path(`${id}.pids`);
  const svc = (i: number, id: string, extra: Record<string, unknown>) =>
    fixtureService(ports[i]!, ['--record-pid', pid(id), '--boot-ms', '80'], { queue_size: 500, ...extra });
  const t = keep(
    policyRegistry({
      ui: svc(0, 'ui', { group: 'app', depends_on: ['db'] }),
      worker: svc(1, 'worker', { group: 'app', depends_on: ['db', 'cache'] }),
      db: svc(2, 'db', {}),
      cache: svc(3, 'cache', { depends_on: ['db'] }),
    }),
  );
  const ids = ['ui', 'worker', 'db', 'cache'];
  const leases = await Promise.all(Array.from({ length: 100 }, (_, i) => rt(t, ids[i % 4]!).acquire()));
  assert.equal(leases.length, 100);
  for (const l of leases) l.release();
  for (const id of ids) {
    assert.equal(t.events.of('service_start', id).length, 1, `one start of ${id}`);
    assert.equal(readPids(pid(id)).length, 1, `one process of ${id}`);
    assert.equal(rt(t, id).state, 'hot');
  }
  // db was ready before anything that needs it launched.
  const readyDb = t.events.of('service_ready', 'db')[0]!.ts;
  for (const id of ['ui', 'worker', 'cache']) assert.ok(t.events.of('service_ready', id)[0]!.ts >= readyDb);
  assert.equal(t.events.of('service_start_failed').length, 0);
});

test('a group whose members depend on each other stops dependent first, then its dependency', async () => {
  const [p1, p2] = [await freePort(), await freePort()];
  const t = keep(
    policyRegistry({
      comfyui: fixtureService(p1, [], { group: 'comfy', depends_on: ['models'], idle_timeout_ms: 150 }),
      models: fixtureService(p2, [], { group: 'comfy', idle_timeout_ms: 150 }),
    }),
  );
  (await rt(t, 'models').acquire()).release();
  await t.events.nth('service_ready', 2);
  assert.equal(t.events.of('service_start').length, 2, 'one start each: the group start joined the dependency start');
  await t.events.nth('service_stopped', 2);
  assert.deepEqual(sequence(t, ['service_stopped']), ['service_stopped:comfyui', 'service_stopped:models']);
});
