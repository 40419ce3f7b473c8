/**
 * Swapping across machines: two real agents (machines m1 and m2, each with the whole
 * `gpu_mem_mb` of one model) and a third agent machine `ms` that is put to sleep. Models a
 * (prefers m1), b (prefers m2) and c ([m1, ms, m2]) each need a whole machine.
 *
 * - a and b stay hot together, one per machine; never two models running on one machine.
 * - With a busy on m1 (a held stream), c does not wait for a: it goes to m2, stopping the idle b
 *   there, and the sleeping `ms` in between is passed over, not woken (an awake machine with room
 *   is preferred to waking one); the failover event says why.
 * - Once the stream ends, every model is served again, swapping on the machines they prefer.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HestiaEvent } from '../../src/observability/events.ts';
import { AgentClient } from '../../src/remote/agent/client.ts';
import { type ChildAgent, spawnAgent } from '../helpers/agent.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { answer, chat as chatOn, modelService, readRest } from './model-servers.ts';

const TOKEN = 'swap-machines-token-0123456789';
const CAP = { gpu_mem_mb: 24_000 };

describe('model swapping across machines with agents', () => {
  const tmp = tempDir();
  const agents: ChildAgent[] = [];
  let gw: TestGateway;
  let events: EventRecorder;
  const ports: Record<string, number> = {};
  const wokeFile = tmp.path('ms-woken');
  /** Most models running (hot or stopping) at once on one machine, sampled at every event. */
  let maxPerMachine = 0;

  before(async () => {
    const spawn = async (name: string) => {
      mkdirSync(join(tmp.dir, name), { recursive: true });
      const ag = await spawnAgent({ port: await freePort(), stateDir: join(tmp.dir, name, 'state'), token: TOKEN });
      agents.push(ag);
      return ag;
    };
    const [m1, m2, ms] = [await spawn('m1'), await spawn('m2'), await spawn('ms')];
    for (const id of ['a', 'b', 'c', 's']) ports[id] = await freePort();
    gw = await startTestGateway({
      machines: {
        m1: { host: '127.0.0.1', agent: { url: m1.url, token: TOKEN }, capacity: CAP },
        m2: { host: '127.0.0.1', agent: { url: m2.url, token: TOKEN }, capacity: CAP },
        ms: {
          host: '127.0.0.1',
          agent: { url: ms.url, token: TOKEN },
          capacity: CAP,
          // Its sleep stops its agent (so it does not answer); a wake would leave a mark.
          sleep: { type: 'command', command: ['/bin/kill', '-TERM', String(ms.pid)], idle_sleep_ms: 50 },
          wake: { type: 'command', command: ['/bin/sh', '-c', `touch ${wokeFile}`], wait_timeout_ms: 3_000 },
        },
      },
      services: {
        a: modelService('a', ports.a as number, ['model-a'], { requires: CAP, machines: ['m1', 'm2'] }),
        b: modelService('b', ports.b as number, ['model-b'], { requires: CAP, machines: ['m2', 'm1'] }),
        c: modelService('c', ports.c as number, ['model-c'], { requires: CAP, machines: ['m1', 'ms', 'm2'] }),
        s: modelService('s', ports.s as number, ['model-s'], { requires: CAP, machines: ['ms'] }),
      },
    });
    events = new EventRecorder(gw.ctx.bus);
    gw.ctx.bus.on('event', (_ev: HestiaEvent) => {
      const perMachine = new Map<string, number>();
      for (const id of ['a', 'b', 'c', 's']) {
        const st = gw.ctx.services.get(id)?.status();
        if (st && (st.state === 'hot' || st.state === 'stopping') && st.machineId)
          perMachine.set(st.machineId, (perMachine.get(st.machineId) ?? 0) + 1);
      }
      maxPerMachine = Math.max(maxPerMachine, ...perMachine.values());
    });
  });
  after(async () => {
    await gw?.close();
    // The model servers belong to the agents and outlive the gateway: stopped through them.
    for (const ag of agents) {
      const client = new AgentClient({ url: ag.url, token: TOKEN });
      const running = await client.list().catch(() => []);
      for (const p of running) if (p.running) await client.stop(p.id, 10_000).catch(() => null);
      await client.close();
      ag.kill();
    }
    tmp.cleanup();
  });

  const chat = (model: string, content = 'hi') => chatOn(gw.url, model, content);
  const where = (id: string) => gw.ctx.services.get(id)?.status();

  test('ms goes to sleep once its model is stopped (its agent stops)', async () => {
    assert.equal(await answer(await chat('model-s')), 's says hello');
    assert.equal(where('s')?.machineId, 'ms');
    assert.equal((await fetch(`${gw.url}/v1/services/s/stop`, { method: 'POST' })).status < 300, true);
    const slept = await events.nth('machine_sleep', 1);
    assert.equal(slept.machineId, 'ms');
    assert.equal(slept.details.result, 'ok');
  });

  test('two models on two machines stay hot together, one per machine', async () => {
    assert.equal(await answer(await chat('model-a')), 'a says hello');
    assert.equal(await answer(await chat('model-b')), 'b says hello');
    assert.deepEqual(
      [where('a')?.machineId, where('a')?.state, where('b')?.machineId, where('b')?.state],
      ['m1', 'hot', 'm2', 'hot'],
    );
    assert.equal(events.of('capacity_eviction').length, 0, 'nothing had to make room');
  });

  test('a busy on m1: c goes to m2 (the idle b stopped there), the sleeping ms is passed over, not woken', async () => {
    const stream = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'model-a', stream: true, messages: [{ role: 'user', content: 'hold' }] }),
    });
    const reader = stream.body!.getReader();
    assert.match(new TextDecoder().decode((await reader.read()).value), /"content":"a"/);

    assert.equal(await answer(await chat('model-c')), 'c says hello');
    assert.equal(where('c')?.machineId, 'm2');
    assert.equal(where('b')?.state, 'cold');
    assert.equal(where('a')?.state, 'hot', 'a keeps its stream');
    const ev = events.of('capacity_eviction');
    assert.deepEqual(
      ev.map((e) => [e.serviceId, e.details.forService, e.machineId, e.details.afterInFlight ?? false]),
      [['b', 'c', 'm2', false]],
    );
    // ms was not woken: no wake event, its wake command never ran; the failover says why.
    assert.equal(events.of('machine_wake').length, 0);
    assert.equal(existsSync(wokeFile), false);
    const moves = events.of('machine_failover').filter((e) => e.serviceId === 'c');
    assert.deepEqual(
      moves.map((e) => [e.details.from, e.details.to]),
      [
        ['m1', 'ms'],
        ['ms', 'm2'],
      ],
    );
    assert.match(String(moves[0]?.details.reason), /machine 'm2' has room/);
    assert.match(String(moves[1]?.details.reason), /asleep and was not woken/);

    // The stream is still whole.
    await fetch(`http://127.0.0.1:${ports.a}/_release`, { method: 'POST' });
    assert.match(await readRest(reader), /\[DONE\]/);
  });

  test('every model answers again; never two models running on one machine', async () => {
    const models = ['model-b', 'model-a', 'model-c', 'model-b', 'model-a'];
    for (const m of models) assert.equal(await answer(await chat(m)), `${m.slice(-1)} says hello`);
    assert.equal(maxPerMachine, 1, 'one model per machine at any time');
  });
});
