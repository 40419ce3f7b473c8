/**
 * A gateway restart with a service running through an agent (SPEC §15): the process is the
 * agent's, so the gateway leaves it running at shutdown and the next gateway re-adopts it
 * (launcher `adopt` asks the agent) — no second launch — and still hears of its exit.
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type ChildAgent, spawnAgent } from '../helpers/agent.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { fixtureService, isAlive, readPids, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';

const TOKEN = 'restart-token-0123456789';
const tmp = tempDir();
let agent: ChildAgent | undefined;
const gateways: TestGateway[] = [];
const pidFile = tmp.path('pids');
after(async () => {
  for (const g of gateways) await g.close().catch(() => {});
  agent?.kill();
  for (const pid of readPids(pidFile)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  tmp.cleanup();
});

test('gateway restart: the agent’s process is left running and re-adopted, no second launch', async () => {
  mkdirSync(join(tmp.dir, 'a'));
  agent = await spawnAgent({ port: await freePort(), stateDir: join(tmp.dir, 'a', 'state'), token: TOKEN });
  const config = {
    machines: { 'gpu-a': { host: '127.0.0.1', agent: { url: agent.url, token: TOKEN } } },
    services: { svc: fixtureService(await freePort(), ['--record-pid', pidFile], { machines: ['gpu-a'] }) },
  };
  const dbPath = tmp.path('hestia.db');
  const first = await startTestGateway(config, { dbPath });
  gateways.push(first);
  assert.equal((await fetch(`${first.url}/services/svc/info`)).status, 200);
  const [pid] = readPids(pidFile);
  assert.ok(pid);
  await first.close();
  assert.ok(isAlive(pid), 'left running at gateway shutdown');

  const second = await startTestGateway(config, { dbPath });
  gateways.push(second);
  const events = new EventRecorder(second.ctx.bus);
  const status = (await (await fetch(`${second.url}/v1/services/svc/status`)).json()) as Record<string, unknown>;
  assert.equal(status.state, 'hot');
  assert.equal(status.machineId, 'gpu-a');
  assert.equal((await fetch(`${second.url}/services/svc/info`)).status, 200);
  assert.deepEqual(readPids(pidFile), [pid], 'no second launch');
  process.kill(pid, 'SIGKILL');
  await events.nth('service_crashed', 1);
});
