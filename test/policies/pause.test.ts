/**
 * `stop_mode: pause` with a real process service: the idle stop freezes the process group
 * (SIGSTOP, /proc state T) and the service is cold with `paused: true`; the next request resumes
 * the same process (SIGCONT); an explicit stop, the gateway's shutdown and a kill while paused
 * all end it; a paused child recorded by a gateway that died is stopped by the next one.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, afterEach, test } from 'node:test';
import { Store } from '../../src/store/store.ts';
import { fixtureService, isAlive, type TestRegistry, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';
import { policyRegistry } from './helpers.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
const open: TestRegistry[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
});

function procState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

async function pausedService(store: Store | null = null) {
  const port = await freePort();
  const t = policyRegistry(
    { llm: fixtureService(port, [], { idle_timeout_ms: 100, stop_mode: 'pause' }) },
    undefined,
    store,
  );
  open.push(t);
  const llm = t.registry.get('llm')!;
  (await llm.acquire()).release();
  const pid = t.events.of('service_ready', 'llm')[0]!.details.pid as number;
  await t.events.nth('service_paused', 1);
  return { t, llm, pid, port };
}

test('an idle stop pauses the process group; the next request resumes the same process', async () => {
  const { t, llm, pid, port } = await pausedService();
  const idle = t.events.of('idle_shutdown', 'llm')[0]!;
  assert.equal(idle.details.mode, 'pause');
  assert.equal(llm.state, 'cold');
  assert.equal(llm.status().paused, true);
  assert.equal(llm.status().stopMode, 'pause');
  assert.equal(procState(pid), 'T', 'SIGSTOPped');
  assert.equal(t.events.of('service_stopped').length, 0, 'paused, not stopped');

  const lease = await llm.acquire();
  assert.equal(lease.coldStart, true);
  const body = (await (await fetch(`http://127.0.0.1:${port}/x`)).json()) as { pid: number };
  lease.release();
  assert.equal(body.pid, pid, 'the same process answers');
  assert.notEqual(procState(pid), 'T');
  const ready = t.events.of('service_ready', 'llm')[1]!;
  assert.equal(ready.details.resumed, true);
  assert.equal(t.events.of('service_start', 'llm')[1]!.details.resume, true);
  assert.equal(llm.status().paused, false);
  assert.equal(t.logs().filter((l) => l.event_type === 'service_process_spawned').length, 1, 'one launch in all');
});

test('an explicit stop of a paused service ends its process', async () => {
  const { llm, pid } = await pausedService();
  assert.equal(llm.stop('test'), true);
  await waitFor(() => !isAlive(pid), { message: 'the paused process to end' });
  assert.equal(llm.status().paused, false);
  assert.equal(llm.stop('again'), false, 'cold and not paused: nothing to stop');
});

test('gateway shutdown ends a paused local process', async () => {
  const { t, pid } = await pausedService();
  await t.close();
  assert.equal(isAlive(pid), false);
});

test('a paused process killed meanwhile is noticed; the next request launches afresh', async () => {
  const { t, llm, pid } = await pausedService();
  process.kill(pid, 'SIGKILL');
  await waitFor(() => llm.status().paused === false, { message: 'the kill noticed' });
  assert.match(String(llm.status().lastError?.message), /crashed while paused/);
  (await llm.acquire()).release();
  const again = t.events.of('service_ready', 'llm')[1]!;
  assert.notEqual(again.details.pid, pid);
  assert.equal(again.details.resumed, undefined);
});

test('a paused child left by a gateway that died is stopped by the next gateway at boot', async () => {
  const db = tmp.path('paused.db');
  const store1 = Store.open({ path: db, retentionMaxEvents: 1000, retentionMaxAgeDays: 1 });
  const { pid } = await pausedService(store1);
  // The first gateway "dies": its state stays as recorded (cold, paused) and its child frozen.
  const store2 = Store.open({ path: db, retentionMaxEvents: 1000, retentionMaxAgeDays: 1 });
  const rec = store2.loadServiceStates().get('llm');
  assert.equal(rec?.state, 'cold');
  assert.equal(rec?.persist?.paused, true);
  const port = await freePort();
  // The next gateway, with the same command (adoption requires the very same process and argv).
  const t3 = policyRegistry(
    {
      llm: {
        ...fixtureService(port, [], { stop_mode: 'pause' }),
        launcher: { type: 'process', command: rec?.persist?.argv },
      },
    },
    undefined,
    store2,
  );
  open.push(t3);
  await t3.registry.restore();
  assert.equal(isAlive(pid), false, 'the frozen child was stopped');
  assert.equal(t3.registry.get('llm')!.status().paused, false);
});
