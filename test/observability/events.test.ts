/**
 * Lifecycle events through a real gateway: `GET /v1/events` (filters, newest first), the live
 * SSE stream (`GET /v1/events/stream`) while real child processes start and stop, replay after a
 * reconnect, auth on the stream, shutdown ending streams, and retention configured on the gateway.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, afterEach, test } from 'node:test';
import { generateApiKey } from '../../src/auth/api-keys.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { fixtureService, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { openSse, type SseStream } from './sse-client.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gateway(config: Record<string, unknown>): Promise<{ gw: TestGateway; events: EventRecorder }> {
  const gw = await startTestGateway(config);
  cleanups.push(() => gw.close());
  return { gw, events: new EventRecorder(gw.ctx.bus) };
}

async function sse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const s = await openSse(url, headers);
  cleanups.push(() => s.close());
  return s;
}

interface ApiEvent {
  id: number;
  ts: number;
  time: string;
  type: string;
  serviceId: string | null;
  machineId: string | null;
  details: Record<string, unknown>;
}

async function events(gw: TestGateway, query = ''): Promise<ApiEvent[]> {
  const res = await fetch(`${gw.url}/v1/events${query}`);
  assert.equal(res.status, 200, query);
  return ((await res.json()) as { events: ApiEvent[] }).events;
}

const post = (url: string) =>
  fetch(url, { method: 'POST' }).then(async (r) => ({ status: r.status, body: await r.text() }));

test('the SSE stream delivers a start and a stop as they happen, with the store ids of /v1/events', async () => {
  const port = await freePort();
  const { gw } = await gateway({ services: { svc: fixtureService(port, []) } });
  const stream = await sse(`${gw.url}/v1/events/stream`);
  assert.equal(stream.res.statusCode, 200);
  assert.match(stream.res.headers['content-type'] ?? '', /^text\/event-stream/);
  assert.equal(stream.res.headers['x-accel-buffering'], 'no');

  assert.equal((await post(`${gw.url}/v1/services/svc/start`)).status, 202);
  const start = await stream.until((e) => e.type === 'service_start');
  assert.equal(start.serviceId, 'svc');
  assert.deepEqual((start.details as Record<string, unknown>).to, 'starting');
  const ready = await stream.until((e) => e.type === 'service_ready');
  assert.equal(ready.serviceId, 'svc');

  assert.equal((await post(`${gw.url}/v1/services/svc/stop`)).status, 202);
  const stop = await stream.until((e) => e.type === 'service_stop');
  const stopped = await stream.until((e) => e.type === 'service_stopped');
  assert.equal((stopped.details as Record<string, unknown>).to, 'cold');

  // Frames carry the same objects (and ids) as the stored events, in order.
  const streamed = [start, ready, stop, stopped];
  const ids = streamed.map((e) => e.id as number);
  assert.deepEqual(
    ids,
    [...ids].sort((a, b) => a - b),
    'ids increase',
  );
  const stored = await events(gw, '?service=svc&limit=50');
  for (const e of streamed) assert.deepEqual(e, stored.find((s) => s.id === e.id) as unknown, `event ${e.id}`);
  const frameIds = stream.frames.map((f) => f.id);
  for (const id of ids) assert.ok(frameIds.includes(String(id)), 'SSE id: field = store id');
});

test('GET /v1/events: newest first, filtered by service and type, limited; bad input refused', async () => {
  const [pa, pb] = await Promise.all([freePort(), freePort()]);
  const { gw, events: rec } = await gateway({
    services: { a: fixtureService(pa, []), b: fixtureService(pb, []) },
  });
  assert.equal((await post(`${gw.url}/v1/services/a/start`)).status, 202);
  await rec.nth('service_ready', 1);
  assert.equal((await post(`${gw.url}/v1/services/b/start`)).status, 202);
  await rec.nth('service_ready', 2);
  assert.equal((await post(`${gw.url}/v1/services/a/stop`)).status, 202);
  await rec.nth('service_stopped', 1);

  const all = await events(gw);
  assert.deepEqual(
    all.map((e) => `${e.type}:${e.serviceId}`),
    ['service_stopped:a', 'service_stop:a', 'service_ready:b', 'service_start:b', 'service_ready:a', 'service_start:a'],
  );
  for (let i = 1; i < all.length; i++) {
    assert.ok(all[i - 1]!.id > all[i]!.id, 'newest first');
    assert.ok(all[i - 1]!.ts >= all[i]!.ts);
  }
  const e0 = all[0]!;
  assert.equal(e0.time, new Date(e0.ts).toISOString());
  assert.equal(e0.machineId, 'local');

  assert.deepEqual(
    (await events(gw, '?service=a')).map((e) => e.type),
    ['service_stopped', 'service_stop', 'service_ready', 'service_start'],
  );
  assert.deepEqual(
    (await events(gw, '?type=service_ready')).map((e) => e.serviceId),
    ['b', 'a'],
  );
  assert.deepEqual(
    (await events(gw, '?service=a&type=service_start')).map((e) => e.id),
    [all[5]!.id],
  );
  assert.deepEqual(
    (await events(gw, '?limit=2')).map((e) => e.id),
    [all[0]!.id, all[1]!.id],
  );
  const unknown = await fetch(`${gw.url}/v1/events?service=zzz`);
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as Record<string, unknown>).code, 'HESTIA_UNKNOWN_SERVICE');
  for (const bad of ['0', '-1', 'x', '1.5']) {
    const r = await fetch(`${gw.url}/v1/events?limit=${bad}`);
    assert.equal(r.status, 400, bad);
    await r.arrayBuffer();
  }
});

test('a stream filters by service and type; a reconnect with Last-Event-ID replays what it missed', async () => {
  const [pa, pb] = await Promise.all([freePort(), freePort()]);
  const { gw, events: rec } = await gateway({
    services: { a: fixtureService(pa, []), b: fixtureService(pb, []) },
  });
  const onlyB = await sse(`${gw.url}/v1/events/stream?service=b`);
  const onlyReady = await sse(`${gw.url}/v1/events/stream?type=service_ready`);
  assert.equal((await post(`${gw.url}/v1/services/a/start`)).status, 202);
  await rec.nth('service_ready', 1);
  const firstA = (await events(gw, '?service=a&limit=1'))[0]!;
  assert.equal((await post(`${gw.url}/v1/services/b/start`)).status, 202);
  await rec.nth('service_ready', 2);

  const b1 = JSON.parse((await onlyB.next()).data) as ApiEvent;
  const b2 = JSON.parse((await onlyB.next()).data) as ApiEvent;
  assert.deepEqual([b1.type, b1.serviceId, b2.type, b2.serviceId], ['service_start', 'b', 'service_ready', 'b']);
  const r1 = JSON.parse((await onlyReady.next()).data) as ApiEvent;
  const r2 = JSON.parse((await onlyReady.next()).data) as ApiEvent;
  assert.deepEqual([r1.serviceId, r2.serviceId], ['a', 'b']);
  assert.deepEqual([r1.type, r2.type], ['service_ready', 'service_ready']);

  // Reconnect after a's ready: b's start and ready come first (oldest first), then live events.
  const resumed = await sse(`${gw.url}/v1/events/stream`, { 'last-event-id': String(firstA.id) });
  const replayed = [JSON.parse((await resumed.next()).data), JSON.parse((await resumed.next()).data)] as ApiEvent[];
  assert.deepEqual(
    replayed.map((e) => `${e.type}:${e.serviceId}`),
    ['service_start:b', 'service_ready:b'],
  );
  assert.equal((await post(`${gw.url}/v1/services/a/stop`)).status, 202);
  const live = JSON.parse((await resumed.next()).data) as ApiEvent;
  assert.deepEqual([live.type, live.serviceId], ['service_stop', 'a']);
  assert.ok(live.id > replayed[1]!.id);
  // `since` does the same for clients that cannot set headers.
  const since = await sse(`${gw.url}/v1/events/stream?since=${replayed[1]!.id}`);
  assert.equal(JSON.parse((await since.next()).data).type, 'service_stop');

  const head = await fetch(`${gw.url}/v1/events/stream`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.match(head.headers.get('content-type') ?? '', /^text\/event-stream/);
  const bad = await fetch(`${gw.url}/v1/events/stream?since=abc`);
  assert.equal(bad.status, 400);
  const unknown = await fetch(`${gw.url}/v1/events/stream?service=zzz`);
  assert.equal(unknown.status, 404);
});

test('the stream needs credentials when auth is on; a scoped key is refused', async () => {
  const full = generateApiKey();
  const scoped = generateApiKey();
  const { gw } = await gateway({
    services: { a: { base_url: 'http://127.0.0.1:9' } },
    auth: {
      enabled: true,
      api_keys: [
        { name: 'full', sha256: full.sha256 },
        { name: 'scoped', sha256: scoped.sha256, services: ['a'] },
      ],
    },
  });
  const none = await fetch(`${gw.url}/v1/events/stream`);
  assert.equal(none.status, 401);
  const narrow = await fetch(`${gw.url}/v1/events/stream`, { headers: { 'x-api-key': scoped.key } });
  assert.equal(narrow.status, 403);
  const ok = await sse(`${gw.url}/v1/events/stream`, { 'x-api-key': full.key });
  assert.equal(ok.res.statusCode, 200);
  gw.ctx.bus.publish('config_reloaded', null, { note: 'test' });
  const ev = JSON.parse((await ok.next()).data) as ApiEvent;
  assert.equal(ev.type, 'config_reloaded');
  assert.ok(!gw.logText().includes(full.key), 'the key never reaches the log');
});

test('closing the gateway ends open streams (it does not wait for them)', async () => {
  const gw = await startTestGateway({ services: {}, server: { shutdown_grace_ms: 60_000 } });
  const s1 = await openSse(`${gw.url}/v1/events/stream`);
  const s2 = await openSse(`${gw.url}/v1/events/stream?type=service_start`);
  await gw.close();
  await Promise.all([s1.ended, s2.ended]);
  assert.equal(s1.res.complete, true, 'ended cleanly by the server, not cut');
});

test('a stream client that stops reading is disconnected instead of buffered without bound', async () => {
  // warn: the 64 KiB events below are not worth keeping in the captured log.
  const gw = await startTestGateway({ services: {} }, { level: 'warn' });
  cleanups.push(() => gw.close());
  const { port } = new URL(gw.url);
  const sock = connect(Number(port), '127.0.0.1');
  await once(sock, 'connect');
  sock.write('GET /v1/events/stream HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n');
  const [head] = (await once(sock, 'data')) as [Buffer]; // the head: subscribed
  assert.match(head.toString('latin1'), /^HTTP\/1\.1 200 /);
  sock.pause(); // ...and read nothing more for now
  let received = 0;
  const closed = new Promise<void>((r) => sock.on('close', () => r()));
  const big = 'x'.repeat(64 * 1024);
  // 400 frames of 64 KiB (25 MiB): far more than the socket buffers hold, so the bytes pending
  // in the response pass MAX_BUFFERED and the server must give up on this client.
  for (let i = 0; i < 400; i++) {
    gw.ctx.bus.publish('config_reloaded', null, { big, i });
    await new Promise((r) => setImmediate(r));
  }
  // Reading again drains what was delivered; a dropped stream then ends (a kept one would not).
  sock.on('data', (d: Buffer) => {
    received += d.length;
  });
  sock.resume();
  await closed;
  assert.ok(received < 400 * 64 * 1024, `got ${received} bytes: the stream was cut before the end`);
  // Others are unaffected: a new stream works.
  const fresh = await sse(`${gw.url}/v1/events/stream`);
  gw.ctx.bus.publish('config_reloaded', null, { after: true });
  assert.equal(JSON.parse((await fresh.next()).data).details.after, true);
});

test('retention configured on the gateway bounds the stored events; the newest are kept', async () => {
  const { gw } = await gateway({ services: {}, events: { retention_max_events: 100, retention_max_age_days: 1 } });
  for (let i = 0; i < 450; i++) gw.ctx.bus.publish('config_reloaded', null, { n: i });
  const kept = await events(gw, '?limit=1000');
  // Pruning runs every PRUNE_EVERY (100) inserts: at most one batch over the limit.
  assert.ok(kept.length >= 100 && kept.length <= 200, `kept ${kept.length}`);
  assert.equal(kept[0]!.details.n, 449, 'the newest is kept');
  assert.ok(
    kept.every((e) => (e.details.n as number) >= 250),
    'the oldest were deleted',
  );
});
