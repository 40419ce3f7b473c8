/**
 * Swapping (SPEC §6 capacity, §11): two model services that each need the whole `gpu_mem_mb`
 * of `local`. Requests alternate between them through the model endpoints; exactly one runs at
 * any time, none fails, and a long stream on one delays the other's start until it ends.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HestiaEvent } from '../../src/observability/events.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { freePort } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';
import { answer, chat as chatOn, modelService, readRest } from './model-servers.ts';

describe('model swapping on one machine', () => {
  let gw: TestGateway;
  let events: EventRecorder;
  let portA: number;
  /** Most services running (hot or stopping) at once, sampled at every lifecycle event. */
  let maxRunning = 0;

  before(async () => {
    portA = await freePort();
    const portB = await freePort();
    gw = await startTestGateway({
      machines: { local: { host: '127.0.0.1', capacity: { gpu_mem_mb: 24_000 } } },
      services: {
        a: modelService('a', portA, ['model-a'], { requires: { gpu_mem_mb: 24_000 } }),
        b: modelService('b', portB, ['model-b'], { requires: { gpu_mem_mb: 24_000 } }),
      },
    });
    events = new EventRecorder(gw.ctx.bus);
    gw.ctx.bus.on('event', (_ev: HestiaEvent) => {
      const running = ['a', 'b'].filter((id) => {
        const s = gw.ctx.services.get(id)?.state;
        return s === 'hot' || s === 'stopping';
      }).length;
      maxRunning = Math.max(maxRunning, running);
    });
  });
  after(() => gw.close());

  const chat = (model: string, content = 'hi') => chatOn(gw.url, model, content);

  test('alternating requests: every one answered by its model, one service running at a time', async () => {
    for (const model of ['model-a', 'model-b', 'model-a', 'model-b']) {
      assert.equal(await answer(await chat(model)), `${model.slice(-1)} says hello`);
    }
    assert.equal(maxRunning, 1, 'never two running at once');
    assert.equal(events.of('capacity_eviction').length, 3);
    // Concurrent and alternating: all answered (each waits for its turn), none fails.
    const models = ['model-a', 'model-b', 'model-a', 'model-b', 'model-a', 'model-b'];
    const texts = await Promise.all(models.map(async (m) => answer(await chat(m))));
    assert.deepEqual(
      texts,
      models.map((m) => `${m.slice(-1)} says hello`),
    );
    assert.equal(maxRunning, 1, 'never two running at once');
  });

  test('a long stream on A delays B’s start until it ends; a request for A meanwhile waits behind the swap', async () => {
    // A hot (B is the one to make room for it if needed).
    await answer(await chat('model-a'));
    assert.equal(gw.ctx.services.get('a')?.state, 'hot');
    const evictions = events.of('capacity_eviction').length;
    const stopsOfA = events.of('service_stopped', 'a').length;

    const stream = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'model-a', stream: true, messages: [{ role: 'user', content: 'hold' }] }),
    });
    const reader = stream.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    assert.match(first, /"content":"a"/);

    const forB = chat('model-b');
    // B's start asks A to make room after its in-flight request.
    const ev = await events.nth('capacity_eviction', evictions + 1);
    assert.deepEqual([ev.serviceId, ev.details.forService, ev.details.afterInFlight], ['a', 'b', true]);
    assert.equal(gw.ctx.services.get('a')?.state, 'hot', 'A keeps serving its stream');
    assert.equal(gw.ctx.services.get('b')?.state, 'starting');
    assert.equal(events.of('service_stopped', 'a').length, stopsOfA, 'A not stopped while its stream runs');

    // A request for A now waits behind the swap (A admits nothing new).
    const forA = chat('model-a');
    // (No event marks a request joining a queue: polled.)
    await waitFor(() => gw.ctx.services.get('a')?.status().queuePending === 1, { message: 'request for A queued' });
    assert.equal(gw.ctx.services.get('a')?.state, 'hot');
    assert.equal(gw.ctx.services.get('b')?.state, 'starting', 'B still waits for the stream');

    // Release the stream: it ends, A stops, B starts and answers; then A again for the waiter.
    await fetch(`http://127.0.0.1:${portA}/_release`, { method: 'POST' });
    assert.match(await readRest(reader), /\[DONE\]/);
    assert.equal(await answer(await forB), 'b says hello');
    assert.equal(await answer(await forA), 'a says hello');

    const idx = (type: string, id: string, from = 0) =>
      events.events.findIndex((e, i) => i >= from && e.type === type && e.serviceId === id);
    const evictedAt = events.events.indexOf(ev);
    assert.ok(
      idx('service_stopped', 'a', evictedAt) < idx('service_ready', 'b', evictedAt),
      'A was cold before B was ready',
    );
    assert.equal(maxRunning, 1, 'never two running at once');
  });
});

describe('swap fairness: what was queued for the busy model is served before it is swapped out', () => {
  let gw: TestGateway;
  let events: EventRecorder;
  let portA: number;

  before(async () => {
    portA = await freePort();
    gw = await startTestGateway({
      machines: { local: { host: '127.0.0.1', capacity: { gpu_mem_mb: 24_000 } } },
      services: {
        // One request at a time: the others queue.
        a: modelService('a', portA, ['model-a'], { requires: { gpu_mem_mb: 24_000 }, max_concurrency: 1 }),
        b: modelService('b', await freePort(), ['model-b'], { requires: { gpu_mem_mb: 24_000 } }),
      },
    });
    events = new EventRecorder(gw.ctx.bus);
  });
  after(() => gw.close());

  const post = (model: string, content: string, stream = false) =>
    fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, stream, messages: [{ role: 'user', content }] }),
    });
  const state = (id: string) => gw.ctx.services.get(id)?.state;
  const firstChunk = async (res: Response) => {
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const text = new TextDecoder().decode((await reader.read()).value);
    return { text, reader };
  };
  const release = () => fetch(`http://127.0.0.1:${portA}/_release`, { method: 'POST' });

  test('in flight, then the two queued when the swap was asked, then the swap; a later request waits behind it', async () => {
    const held = await firstChunk(await post('model-a', 'hold', true));
    assert.match(held.text, /"content":"a"/);
    const startsOfA = events.of('service_start', 'a').length;
    // Two more for A queue behind the one in flight (max_concurrency 1).
    const q1 = post('model-a', 'hold', true);
    const q2 = post('model-a', 'hold', true);
    // (No event marks a request joining a queue: polled.)
    await waitFor(() => gw.ctx.services.get('a')?.status().queuePending === 2, { message: 'two queued for A' });

    // B asks A to make room; a request for A after that waits behind the swap.
    const forB = post('model-b', 'hi');
    const ev = await events.nth('capacity_eviction', 1);
    assert.deepEqual([ev.serviceId, ev.details.forService, ev.details.afterInFlight], ['a', 'b', true]);
    const late = post('model-a', 'hi');
    await waitFor(() => gw.ctx.services.get('a')?.status().queuePending === 3, { message: 'the late one queued' });

    // Each queued request is served by the same A, one after the other, before it stops.
    await release();
    assert.match(await readRest(held.reader), /\[DONE\]/);
    for (const q of [q1, q2]) {
      const served = await firstChunk(await q);
      assert.match(served.text, /"content":"a"/);
      assert.deepEqual([state('a'), state('b')], ['hot', 'starting'], 'A serves it before the swap; B waits');
      assert.equal(events.of('service_stop', 'a').length, 0);
      await release();
      assert.match(await readRest(served.reader), /\[DONE\]/);
    }
    // Then the swap: B answers; the late request for A restarts A afterwards.
    const b = (await (await forB).json()) as { choices: Array<{ message: { content: string } }> };
    assert.equal(b.choices[0]?.message.content, 'b says hello');
    const a = (await (await late).json()) as { choices: Array<{ message: { content: string } }> };
    assert.equal(a.choices[0]?.message.content, 'a says hello');
    assert.equal(events.of('service_start', 'a').length, startsOfA + 1, 'A started again for the late request');
    const stop = events.of('service_stop', 'a')[0];
    assert.equal(stop?.details.cause, 'evicted');
  });
});
