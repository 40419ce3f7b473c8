/**
 * The lifecycle endpoints of SPEC §2 over HTTP: /v1/services, /v1/services/{id}/status|start|stop,
 * /v1/events.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { fixtureService, isAlive, readPids, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { startUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const tmp = tempDir();
let gw: TestGateway;
let events: EventRecorder;
let upstream: Awaited<ReturnType<typeof startUpstream>>;
let procPort: number;

before(async () => {
  upstream = await startUpstream();
  procPort = await freePort();
  gw = await startTestGateway({
    services: {
      running: {
        base_url: `http://127.0.0.1:${upstream.port}`,
        health_url: `http://127.0.0.1:${upstream.port}/health`,
        idle_timeout_ms: 60_000,
      },
      // Nothing listens there: the status probe must fail fast and leave it cold.
      down: { base_url: 'http://127.0.0.1:9', health_url: 'http://127.0.0.1:9/health' },
      proc: fixtureService(procPort, ['--record-pid', tmp.path('proc.pids')]),
    },
  });
  events = new EventRecorder(gw.ctx.bus);
});
after(async () => {
  await gw.close();
  await upstream.close();
  tmp.cleanup();
});

async function json(path: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${gw.url}${path}`, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test('GET /v1/services lists the status of every configured service', async () => {
  const { status, body } = await json('/v1/services');
  assert.equal(status, 200);
  const list = body.services as Array<Record<string, unknown>>;
  assert.deepEqual(list.map((s) => s.serviceId).sort(), ['down', 'proc', 'running']);
  const proc = list.find((s) => s.serviceId === 'proc');
  assert.deepEqual(
    Object.keys(proc ?? {})
      .filter((k) =>
        [
          'serviceId',
          'state',
          'readiness',
          'machineId',
          'queuePending',
          'inflight',
          'lastUsedAt',
          'startedAt',
          'idleTimeoutMs',
        ].includes(k),
      )
      .sort(),
    [
      'idleTimeoutMs',
      'inflight',
      'lastUsedAt',
      'machineId',
      'queuePending',
      'readiness',
      'serviceId',
      'startedAt',
      'state',
    ],
  );
  assert.equal(proc?.state, 'cold');
  assert.equal(proc?.machineId, 'local');
  assert.deepEqual(proc?.automation, { enabled: false }, 'as the original answered for local services');
});

test('unknown service id → 404 in the error envelope with the known services', async () => {
  for (const [method, path] of [
    ['GET', '/v1/services/nope/status'],
    ['POST', '/v1/services/nope/start'],
    ['POST', '/v1/services/nope/stop'],
    ['GET', '/v1/events?service=nope'],
  ] as const) {
    const { status, body } = await json(path, { method });
    assert.equal(status, 404, path);
    assert.equal(body.code, 'HESTIA_UNKNOWN_SERVICE');
    assert.equal(body.src, 'hestia');
    assert.ok((body.services as string[]).includes('proc'));
  }
});

test('status of a cold service whose upstream already runs: probed, adopted, hot/ready', async () => {
  const { status, body } = await json('/v1/services/running/status');
  assert.equal(status, 200);
  assert.equal(body.state, 'hot');
  assert.equal(body.readiness, 'ready');
  assert.equal(body.machineId, 'local');
  assert.equal(typeof body.idleRemainingMs, 'number', 'its idle clock runs');
  assert.ok(upstream.hits.includes('GET /health'));
  const adopted = events.of('service_adopted', 'running');
  assert.equal(adopted.length, 1);
  assert.equal(adopted[0]?.details.via, 'status_probe');
});

test('status of a cold service whose upstream is down stays cold/not_ready', async () => {
  const { status, body } = await json('/v1/services/down/status');
  assert.equal(status, 200);
  assert.equal(body.state, 'cold');
  assert.equal(body.readiness, 'not_ready');
  assert.equal(body.queuePending, 0);
});

test('POST start → 202, then 409 while starting/hot; POST stop → 202, then 409 while stopping/cold', async () => {
  const started = await json('/v1/services/proc/start', { method: 'POST' });
  assert.equal(started.status, 202);
  assert.deepEqual(started.body, { message: "starting service 'proc'", serviceId: 'proc' });
  const again = await json('/v1/services/proc/start', { method: 'POST' });
  assert.equal(again.status, 409);
  assert.equal(again.body.code, 'HESTIA_CONFLICT');
  await waitFor(async () => (await json('/v1/services/proc/status')).body.state === 'hot', { message: 'proc hot' });
  assert.equal((await json('/v1/services/proc/start', { method: 'POST' })).status, 409);
  const st = (await json('/v1/services/proc/status')).body;
  assert.equal(st.readiness, 'ready');
  assert.equal(typeof st.startedAt, 'string');
  const stop = await json('/v1/services/proc/stop', { method: 'POST' });
  assert.equal(stop.status, 202);
  assert.equal(stop.body.serviceId, 'proc');
  await waitFor(async () => (await json('/v1/services/proc/status')).body.state === 'cold', { message: 'proc cold' });
  const stopAgain = await json('/v1/services/proc/stop', { method: 'POST' });
  assert.equal(stopAgain.status, 409);
  const [pid] = readPids(tmp.path('proc.pids'));
  assert.ok(pid);
  assert.equal(isAlive(pid), false);
});

test('GET /v1/events: newest first, filtered by service and type, limited', async () => {
  const all = await json('/v1/events?service=proc');
  assert.equal(all.status, 200);
  const list = all.body.events as Array<Record<string, unknown>>;
  assert.deepEqual(
    list.map((e) => e.type),
    ['service_stopped', 'service_stop', 'service_ready', 'service_start'],
  );
  assert.equal(list[0]?.serviceId, 'proc');
  assert.equal(typeof list[0]?.time, 'string');
  const one = await json('/v1/events?type=service_start&limit=1');
  assert.equal((one.body.events as unknown[]).length, 1);
  assert.equal((one.body.events as Array<Record<string, unknown>>)[0]?.serviceId, 'proc');
  const bad = await json('/v1/events?limit=zero');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.code, 'HESTIA_BAD_REQUEST');
});

test('every lifecycle event is logged with its event_type and service_id', () => {
  const lines = gw.logs().filter((l) => l.service_id === 'proc');
  for (const t of ['service_start', 'service_ready', 'service_stop', 'service_stopped']) {
    assert.ok(
      lines.some((l) => l.event_type === t),
      `log line for ${t}`,
    );
  }
});
