/**
 * The gateway with two real agents (SPEC §15): machines `gpu-a` and `gpu-b` are `hestia agent`
 * child processes on two loopback ports with two state dirs. A `process` service placed on
 * gpu-a runs as gpu-a's agent's child; its death is pushed to the gateway (the service goes
 * cold on the event, no polling); idle stop goes through the agent; gpu-a's agent down → the
 * next start fails over to gpu-b with an event naming why; gpu-a's agent restarted while the
 * service runs → re-adopted, no second launch; a wrong token → refused, nothing started.
 */

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AgentClient } from '../../src/remote/agent/client.ts';
import { type ChildAgent, spawnAgent } from '../helpers/agent.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { fixtureService, isAlive, readPids, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN_A = 'token-of-gpu-a-0123456789';
const TOKEN_B = 'token-of-gpu-b-9876543210';

function ppidOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

describe('process services through agents on gpu-a and gpu-b', () => {
  const tmp = tempDir();
  const agents: ChildAgent[] = [];
  let a: ChildAgent;
  let b: ChildAgent;
  let portA = 0;
  let gw: TestGateway;
  let events: EventRecorder;
  let upPort = 0;
  const pidFile = tmp.path('svc.pids');
  const idlePidFile = tmp.path('idler.pids');
  const stateA = join(tmp.dir, 'a', 'state');
  const wokeFile = tmp.path('gpu-c-woken');

  before(async () => {
    mkdirSync(join(tmp.dir, 'a'), { recursive: true });
    mkdirSync(join(tmp.dir, 'b'), { recursive: true });
    portA = await freePort();
    a = await spawnAgent({ port: portA, stateDir: stateA, token: TOKEN_A });
    b = await spawnAgent({ port: await freePort(), stateDir: join(tmp.dir, 'b', 'state'), token: TOKEN_B });
    agents.push(a, b);
    upPort = await freePort();
    const idlePort = await freePort();
    gw = await startTestGateway(
      {
        machines: {
          // gpu-a's token comes from the environment (GPU_A_AGENT_TOKEN).
          'gpu-a': { host: '127.0.0.1', agent: { url: a.url } },
          'gpu-b': { host: '127.0.0.1', agent: { url: b.url, token: TOKEN_B } },
          // gpu-b's agent with a wrong token, and a wake action that leaves a mark if it runs.
          'gpu-c': {
            host: '127.0.0.1',
            agent: { url: b.url, token: 'wrong-token' },
            wake: { type: 'command', command: ['/bin/sh', '-c', `touch ${wokeFile}`], wait_timeout_ms: 5_000 },
          },
        },
        services: {
          svc: fixtureService(upPort, ['--record-pid', pidFile, '--stdout', 'hello from gpu-a'], {
            machines: ['gpu-a', 'gpu-b'],
          }),
          idler: fixtureService(idlePort, ['--record-pid', idlePidFile], {
            machines: ['gpu-a'],
            idle_timeout_ms: 300,
          }),
          locked: fixtureService(await freePort(), [], { machines: ['gpu-c'] }),
        },
      },
      { env: { GPU_A_AGENT_TOKEN: TOKEN_A } },
    );
    events = new EventRecorder(gw.ctx.bus);
  });
  after(async () => {
    await gw?.close();
    for (const ag of agents) ag.kill();
    for (const f of [pidFile, idlePidFile])
      for (const pid of readPids(f)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
    tmp.cleanup();
  });

  const status = async (id: string) =>
    (await (await fetch(`${gw.url}/v1/services/${id}/status`)).json()) as Record<string, unknown>;

  test('a service placed on gpu-a runs there, as the agent’s child; killing it makes the service cold (pushed)', async () => {
    const r = await fetch(`${gw.url}/services/svc/info`);
    assert.equal(r.status, 200);
    const s = await status('svc');
    assert.equal(s.state, 'hot');
    assert.equal(s.machineId, 'gpu-a');
    const [pid] = readPids(pidFile);
    assert.ok(pid);
    assert.equal(ppidOf(pid), a.pid, 'the process is the agent’s child, not the gateway’s');
    // Its output, pushed by the agent, is in the service's logs API like a local child's.
    await waitFor(
      async () => {
        const logs = (await (await fetch(`${gw.url}/v1/services/svc/logs`)).json()) as {
          lines: Array<{ text: string }>;
        };
        return logs.lines.some((l) => l.text === 'hello from gpu-a');
      },
      { message: "svc's output in /v1/services/svc/logs" },
    );

    process.kill(pid, 'SIGKILL');
    const crashed = await events.nth('service_crashed', 1);
    assert.equal(crashed.serviceId, 'svc');
    assert.match(JSON.stringify(crashed.details), /SIGKILL/);
    assert.equal((await status('svc')).state, 'cold');
  });

  test('idle stop stops it through the agent', async () => {
    assert.equal((await fetch(`${gw.url}/services/idler/health`)).status, 200);
    const [pid] = readPids(idlePidFile);
    assert.ok(pid);
    assert.equal(ppidOf(pid), a.pid);
    const stopped = await events.nth('idle_shutdown', 1);
    assert.equal(stopped.serviceId, 'idler');
    await events.nth('service_stopped', 1);
    assert.equal(isAlive(pid), false);
    const list = await new AgentClient({ url: a.url, token: TOKEN_A }).list();
    const rec = list.find((p) => p.pid === pid);
    assert.equal(rec?.running, false);
    assert.ok(rec?.exit, 'the agent saw it end');
    assert.ok(
      gw.logs().some((l) => l.event_type === 'service_process_stopped' && l.machine === 'gpu-a' && l.pid === pid),
      'the gateway stopped it through the agent',
    );
  });

  test('agent restarted while the service runs: re-adopted, no second launch, exits still pushed', async () => {
    assert.equal((await fetch(`${gw.url}/services/svc/info`)).status, 200);
    const pids = readPids(pidFile);
    const pid = pids.at(-1) as number;
    assert.equal(pids.length, 2);
    await a.stop();
    assert.ok(isAlive(pid), 'the process outlives its agent');
    // The lost channel is an event and shows in /v1/machines.
    const lost = await events.nth('agent_unreachable', 1);
    assert.equal(lost.machineId, 'gpu-a');
    assert.equal(lost.details.machine, 'gpu-a');
    assert.match(String(lost.details.reason), /agent of machine 'gpu-a'/);
    const machines = async () =>
      (
        (await (await fetch(`${gw.url}/v1/machines`)).json()) as {
          machines: Array<{ id: string; agent?: { url: string; channel: string; lastError: string | null } }>;
        }
      ).machines;
    const gpuA = (await machines()).find((m) => m.id === 'gpu-a');
    assert.equal(gpuA?.agent?.channel, 'lost');
    assert.equal(gpuA?.agent?.url, a.url);
    assert.ok(gpuA?.agent?.lastError);
    assert.equal((await machines()).find((m) => m.id === 'gpu-b')?.agent?.channel, 'idle');
    a = await spawnAgent({ port: portA, stateDir: stateA, token: TOKEN_A });
    agents.push(a);
    const back = await events.nth('agent_reconnected', 1);
    assert.equal(back.machineId, 'gpu-a');
    assert.equal(events.of('agent_unreachable').length, 1, 'one event per outage, not one per retry');
    assert.equal((await machines()).find((m) => m.id === 'gpu-a')?.agent?.channel, 'connected');
    // Still served by the same process; no second launch.
    assert.equal((await fetch(`${gw.url}/services/svc/info`)).status, 200);
    assert.equal((await status('svc')).state, 'hot');
    assert.deepEqual(readPids(pidFile), pids);
    // Its output is still captured by the new agent: a line printed now reaches the logs API.
    assert.equal((await fetch(`http://127.0.0.1:${upPort}/say?text=after-restart`, { method: 'POST' })).status, 200);
    await waitFor(
      async () => {
        const logs = (await (await fetch(`${gw.url}/v1/services/svc/logs`)).json()) as {
          lines: Array<{ text: string }>;
        };
        return logs.lines.some((l) => l.text === 'after-restart');
      },
      { message: "the re-adopted process's output in /v1/services/svc/logs" },
    );
    const atAgent = await new AgentClient({ url: a.url, token: TOKEN_A }).list();
    const rec = atAgent.find((p) => p.pid === pid);
    assert.equal(rec?.adopted, true);
    const agentOut = await new AgentClient({ url: a.url, token: TOKEN_A }).output(rec!.id, 10);
    assert.ok(
      agentOut.some((l) => l.text === 'after-restart'),
      'the new agent read it',
    );
    // The re-adopted process's death still reaches the gateway through the new agent.
    process.kill(pid, 'SIGKILL');
    await events.nth('service_crashed', 2);
    assert.equal((await status('svc')).state, 'cold');
  });

  test('gpu-a’s agent down: the next start goes to gpu-b, and an event says why gpu-a was skipped', async () => {
    await a.stop();
    assert.equal((await fetch(`${gw.url}/services/svc/info`)).status, 200);
    const s = await status('svc');
    assert.equal(s.machineId, 'gpu-b');
    const pid = readPids(pidFile).at(-1) as number;
    assert.equal(ppidOf(pid), b.pid);
    const failover = await events.nth('machine_failover', 1);
    assert.equal(failover.details.from, 'gpu-a');
    assert.equal(failover.details.to, 'gpu-b');
    assert.match(String(failover.details.reason), /agent of machine 'gpu-a'|does not answer/);
    assert.match(String(failover.details.reason), /ECONNREFUSED/);
  });

  test('a wrong token: refused with a clear error, nothing started, the machine not woken', async () => {
    const before = (await new AgentClient({ url: b.url, token: TOKEN_B }).list()).length;
    const r = await fetch(`${gw.url}/services/locked/health`);
    assert.equal(r.status, 503);
    const body = (await r.json()) as { error: string };
    assert.match(JSON.stringify(body), /refused the token/);
    // The agent answered (the machine is up): its wake action is not run, no wake event.
    assert.match(JSON.stringify(body), /not woken/);
    assert.equal(existsSync(wokeFile), false, 'the wake command did not run');
    assert.equal(events.of('machine_wake').length, 0);
    const list = await new AgentClient({ url: b.url, token: TOKEN_B }).list();
    assert.equal(list.length, before);
    assert.ok(!list.some((p) => p.name === 'locked'));
  });
});
