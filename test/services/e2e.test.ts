/**
 * The lifecycle end to end, through `/services/{id}/...` on a real gateway (proxy + lifecycle),
 * with real child processes: what a client actually sees.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { after, afterEach, test } from 'node:test';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { fixtureService, isAlive, readPids, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
let current: TestGateway | null = null;
afterEach(async () => {
  await current?.close(); // idempotent: a test may have closed it already
  current = null;
});

async function gateway(services: Record<string, unknown>, server: Record<string, unknown> = {}) {
  const gw = await startTestGateway({ server, services });
  current = gw;
  return { gw, events: new EventRecorder(gw.ctx.bus) };
}

test('200 concurrent requests to a cold service: one launch, 200 answers from it, X-Hestia-Cold-Start', async () => {
  const port = await freePort();
  const pids = tmp.path('e2e-concurrent.pids');
  // Health stays 503 until all 200 are queued, so every one of them waits for the start
  // however slow the machine is (no assumption that 200 fetches beat a 200 ms boot).
  const gate = tmp.path('e2e-concurrent.gate');
  const { gw } = await gateway({
    svc: fixtureService(port, ['--record-pid', pids, '--fail-health-until-file', gate], { queue_size: 500 }),
  });
  const all = Promise.all(
    Array.from({ length: 200 }, async (_v, i) => {
      const res = await fetch(`${gw.url}/services/svc/item/${i}?q=${i}`);
      return {
        status: res.status,
        cold: res.headers.get('x-hestia-cold-start'),
        body: (await res.json()) as Record<string, unknown>,
      };
    }),
  );
  await waitFor(() => gw.ctx.services.get('svc')?.status().queuePending === 200, { message: 'all 200 queued' });
  writeFileSync(gate, '');
  const responses = await all;
  const launched = readPids(pids);
  assert.equal(launched.length, 1, 'exactly one launch');
  assert.ok(responses.every((r) => r.status === 200));
  assert.ok(responses.every((r) => r.body.pid === launched[0]));
  assert.ok(responses.every((r, i) => r.body.path === `/item/${i}?q=${i}`));
  assert.ok(
    responses.every((r) => r.cold !== null && /^\d+$/.test(r.cold)),
    'each waited for the start',
  );
  // Once hot, a request does not wait.
  const hot = await fetch(`${gw.url}/services/svc/`);
  assert.equal(hot.status, 200);
  assert.equal(hot.headers.get('x-hestia-cold-start'), null);
  await hot.arrayBuffer();
});

test('queue overflow answers 503 HESTIA_QUEUE_FULL with Retry-After; the deadline answers 504', async () => {
  const port = await freePort();
  const gate = tmp.path('e2e-full.gate');
  const { gw } = await gateway({
    svc: fixtureService(port, ['--fail-health-until-file', gate], { queue_size: 1, request_timeout_seconds: 1 }),
  });
  const first = fetch(`${gw.url}/services/svc/a`);
  await waitFor(() => gw.ctx.services.get('svc')?.status().queuePending === 1, { message: 'one queued' });
  const full = await fetch(`${gw.url}/services/svc/b`);
  assert.equal(full.status, 503);
  assert.match(full.headers.get('retry-after') ?? '', /^\d+$/);
  const body = (await full.json()) as Record<string, unknown>;
  assert.equal(body.code, 'HESTIA_QUEUE_FULL');
  assert.equal(body.src, 'hestia');
  const timedOut = await first;
  assert.equal(timedOut.status, 504);
  assert.equal(((await timedOut.json()) as Record<string, unknown>).code, 'HESTIA_QUEUE_TIMEOUT');
  writeFileSync(gate, '');
});

test("service_ready says where the start's time went: before the launch, in it, and until ready", async () => {
  const port = await freePort();
  // The child waits 300 ms before listening: that time belongs to readyAfterMs only.
  const { gw, events } = await gateway({ svc: fixtureService(port, ['--boot-ms', '300']) });
  const res = await fetch(`${gw.url}/services/svc/x`);
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  const d = (await events.nth('service_ready', 1)).details;
  for (const k of ['coldStartMs', 'launchAfterMs', 'launchTookMs', 'readyAfterMs'])
    assert.equal(typeof d[k], 'number', `${k} is a number`);
  const num = (k: string) => d[k] as number;
  const [all, before, inLaunch, untilReady] = [
    num('coldStartMs'),
    num('launchAfterMs'),
    num('launchTookMs'),
    num('readyAfterMs'),
  ];
  assert.ok(before >= 0 && inLaunch > 0, `launchAfterMs ${before}, launchTookMs ${inLaunch}`);
  assert.ok(untilReady >= 300, `readyAfterMs ${untilReady} holds the child's 300 ms boot`);
  assert.ok(before < 300 && inLaunch < 300, 'the boot is not counted before or in the launch');
  // coldStartMs is whole milliseconds of the wall clock; the phases, a monotonic clock.
  assert.ok(Math.abs(before + inLaunch + untilReady - all) <= 2, `phases add up to ${all} ms`);
});

test('a client that disconnects while queued leaves the queue; the start goes on', async () => {
  const port = await freePort();
  const gate = tmp.path('e2e-abort.gate');
  const { gw, events } = await gateway({ svc: fixtureService(port, ['--fail-health-until-file', gate]) });
  const url = new URL(`${gw.url}/services/svc/x`);
  const req = httpRequest({ host: url.hostname, port: url.port, path: url.pathname });
  req.on('error', () => {});
  req.end();
  const svc = gw.ctx.services.get('svc');
  await waitFor(() => svc?.status().queuePending === 1, { message: 'queued' });
  req.destroy();
  await waitFor(() => svc?.status().queuePending === 0, { message: 'the queue count to drop' });
  assert.equal(svc?.state, 'starting');
  writeFileSync(gate, '');
  await events.nth('service_ready', 1);
});

test('a start that fails answers 503 {error, code, serviceId, attempts, retry_after_ms, reason}', async () => {
  const port = await freePort();
  const { gw } = await gateway({
    svc: fixtureService(
      port,
      ['--boot-ms', '60000', '--exit-after-ms', '50', '--exit-code', '4', '--stderr', 'no model file'],
      {
        retry_count: 2,
      },
    ),
  });
  const res = await fetch(`${gw.url}/services/svc/`);
  assert.equal(res.status, 503);
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(body.code, 'HESTIA_START_FAILED');
  assert.equal(body.serviceId, 'svc');
  assert.equal(body.attempts, 2);
  assert.equal(typeof body.retry_after_ms, 'number');
  assert.match(String(body.reason), /exited with code 4.*no model file/s);
  assert.equal(typeof body.error, 'string');
  const evs = (await (await fetch(`${gw.url}/v1/events?service=svc&type=service_start_failed`)).json()) as {
    events: Array<{ details: Record<string, unknown> }>;
  };
  assert.match(String(evs.events[0]?.details.reason), /no model file/);
});

test('a long stream keeps the service up past idle_timeout_ms; the idle stop follows its end', async () => {
  const port = await freePort();
  const pids = tmp.path('e2e-stream.pids');
  const { gw, events } = await gateway({ svc: fixtureService(port, ['--record-pid', pids], { idle_timeout_ms: 150 }) });
  const res = await fetch(`${gw.url}/services/svc/stream?chunks=8&interval=100`);
  assert.equal(res.status, 200);
  const text = await res.text(); // ~800 ms, over five idle periods
  assert.equal(text.match(/data:/g)?.length, 8);
  assert.equal(events.of('idle_shutdown').length, 0, 'not stopped during the stream');
  await events.nth('idle_shutdown', 1);
  await events.nth('service_stopped', 1);
  assert.equal(isAlive(readPids(pids)[0] ?? 0), false);
  // The next request starts it again.
  const again = await fetch(`${gw.url}/services/svc/`);
  assert.equal(again.status, 200);
  await again.arrayBuffer();
  assert.equal(readPids(pids).length, 2);
});

test('a crash makes the service cold; the next request through the proxy restarts it', async () => {
  const port = await freePort();
  const pids = tmp.path('e2e-crash.pids');
  const { gw, events } = await gateway({ svc: fixtureService(port, ['--record-pid', pids]) });
  await (await fetch(`${gw.url}/services/svc/`)).arrayBuffer();
  process.kill(readPids(pids)[0] ?? 0, 'SIGKILL');
  await events.nth('service_crashed', 1);
  const res = await fetch(`${gw.url}/services/svc/`);
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { pid: number }).pid, readPids(pids)[1]);
});

test('shutdown: a queued request gets 503 HESTIA_SHUTTING_DOWN; an in-flight stream finishes', async () => {
  const hotPort = await freePort();
  const coldPort = await freePort();
  const gate = tmp.path('e2e-shutdown.gate');
  const { gw } = await gateway(
    {
      hot: fixtureService(hotPort, []),
      cold: fixtureService(coldPort, ['--fail-health-until-file', gate]),
    },
    { shutdown_grace_ms: 10_000 },
  );
  await (await fetch(`${gw.url}/services/hot/`)).arrayBuffer();
  const stream = fetch(`${gw.url}/services/hot/stream?chunks=5&interval=100`);
  const queued = fetch(`${gw.url}/services/cold/x`);
  await waitFor(() => gw.ctx.services.get('cold')?.status().queuePending === 1, { message: 'queued' });
  await waitFor(() => gw.ctx.services.get('hot')?.status().inflight === 1, { message: 'stream in flight' });
  const closing = gw.close();
  const q = await queued;
  assert.equal(q.status, 503);
  assert.equal(((await q.json()) as Record<string, unknown>).code, 'HESTIA_SHUTTING_DOWN');
  const s = await stream;
  assert.equal((await s.text()).match(/data:/g)?.length, 5, 'the stream was not cut');
  await closing;
});
