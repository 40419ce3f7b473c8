/**
 * Metrics through a real gateway: real requests through the proxy, real lifecycle transitions of
 * real child processes (the fixture upstream), then `/metrics` parsed strictly and compared
 * before/after, and the JSON views checked against the original's shape.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { describe, test } from 'node:test';
import { SampleStats, WINDOW } from '../../src/observability/timing.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { closedAfterEachTest, fixtureService, readPids } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { type Exposition, parseExposition } from '../helpers/prom-text.ts';
import { startUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const { tmp, keep } = closedAfterEachTest();

async function gateway(services: Record<string, unknown>, level: 'debug' | 'warn' = 'debug') {
  const gw = keep(await startTestGateway({ services }, { level }));
  return { gw, events: new EventRecorder(gw.ctx.bus) };
}

async function scrape(gw: TestGateway): Promise<Exposition> {
  const res = await fetch(`${gw.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

async function getJson(url: string): Promise<Record<string, unknown>> {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  return (await res.json()) as Record<string, unknown>;
}

/** A raw request (no client-side path normalisation), resolved with the status. */
function rawRequest(url: string, path: string, method = 'GET'): Promise<number> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

const req = (labels: Record<string, string>) => ({ route: '/services/{id}', ...labels });

/** The `service` label values that occur in an exposition, sorted. */
function servicesIn(e: Exposition): string[] {
  return [...new Set(e.samples.map((x) => x.labels.service).filter((v) => v !== undefined))].sort();
}

describe('SampleStats (the JSON view timers)', () => {
  test('percentiles interpolate like the original; count/min/max stay exact beyond the window', () => {
    const s = new SampleStats();
    for (let i = 1; i <= 100; i++) s.add(i, 1);
    assert.deepEqual(s.percentiles([50, 95, 99]), [50.5, 95.05, 99.01]);
    for (let i = 0; i < WINDOW * 2; i++) s.add(1000, 2);
    const t = s.toTimerJson();
    assert.equal(t.count, 100 + WINDOW * 2);
    assert.equal(t.min_ms, 1, 'min over all samples, not only the window');
    assert.equal(t.max_ms, 1000);
    assert.equal(t.p50, 1000, 'percentiles over the last WINDOW samples only');
    assert.equal(s.window, WINDOW);
    assert.equal(new SampleStats().toTimerJson().p99, 0);
    assert.equal(new SampleStats().toTimerJson().timestamp, null);
  });
});

test('a cold start and traffic through the proxy move the counters, histograms and gauges', async () => {
  const port = await freePort();
  const gate = tmp.path('metrics-cold.gate');
  const { gw, events } = await gateway({
    svc: fixtureService(port, ['--fail-health-until-file', gate]),
    other: { base_url: 'http://127.0.0.1:9' },
  });
  const before = await scrape(gw);
  // Nothing has happened to either service yet: neither has a single series.
  assert.deepEqual(servicesIn(before), []);

  // Three requests wait for the start (held by the health gate until all three are queued).
  const waiting = [1, 2, 3].map((i) => fetch(`${gw.url}/services/svc/wait/${i}`));
  await waitFor(() => gw.ctx.services.get('svc')?.status().queuePending === 3, { message: 'three queued' });
  const mid = await scrape(gw);
  assert.equal(mid.value('hestia_queued_requests', { service: 'svc' }), 3);
  assert.equal(mid.value('hestia_service_state', { service: 'svc', state: 'starting' }), 1);
  writeFileSync(gate, '');
  for (const r of await Promise.all(waiting)) {
    assert.equal(r.status, 200);
    await r.arrayBuffer();
  }
  await events.nth('service_ready', 1);
  // Hot path: two GETs, one POST with a 5-byte body, one refused path, one unknown service.
  for (const p of ['a', 'b?x=1']) await (await fetch(`${gw.url}/services/svc/${p}`)).arrayBuffer();
  const post = await fetch(`${gw.url}/services/svc/p`, { method: 'POST', body: 'hello' });
  assert.equal(post.status, 200);
  await post.arrayBuffer();
  assert.equal(await rawRequest(gw.url, '/services/svc/../../etc/passwd'), 400);
  assert.equal(await rawRequest(gw.url, '/services/nope/x'), 404);

  const after = await scrape(gw);
  const delta = (name: string, labels: Record<string, string>) =>
    (after.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);
  assert.equal(delta('hestia_requests_total', req({ service: 'svc', method: 'GET', status_class: '2xx' })), 5);
  assert.equal(delta('hestia_requests_total', req({ service: 'svc', method: 'POST', status_class: '2xx' })), 1);
  assert.equal(delta('hestia_requests_total', req({ service: 'svc', method: 'GET', status_class: '4xx' })), 1);
  assert.equal(delta('hestia_requests_total', req({ service: '_unknown', method: 'GET', status_class: '4xx' })), 1);
  assert.equal(delta('hestia_proxy_errors_total', { service: '_unknown', code: 'HESTIA_UNKNOWN_SERVICE' }), 1);
  assert.equal(delta('hestia_proxy_errors_total', { service: 'svc', code: 'HESTIA_BAD_REQUEST' }), 1);
  assert.equal(delta('hestia_proxy_bytes_total', { service: 'svc', direction: 'in' }), 5);
  assert.ok(delta('hestia_proxy_bytes_total', { service: 'svc', direction: 'out' }) > 0);
  assert.equal(delta('hestia_service_starts_total', { service: 'svc', result: 'success' }), 1);
  assert.equal(delta('hestia_proxy_duration_seconds_count', { service: 'svc' }), 7);
  assert.equal(delta('hestia_queue_wait_seconds_count', { service: 'svc' }), 3, 'the three that waited');
  assert.equal(delta('hestia_cold_start_duration_seconds_count', { service: 'svc' }), 1);
  assert.ok((after.value('hestia_cold_start_duration_seconds_sum', { service: 'svc' }) ?? 0) > 0);
  assert.equal(after.value('hestia_service_state', { service: 'svc', state: 'hot' }), 1);
  assert.equal(after.value('hestia_service_state', { service: 'svc', state: 'cold' }), 0);
  // `other` never saw a request or a lifecycle event: still no series of its own.
  assert.deepEqual(servicesIn(after), ['_unknown', 'svc']);
  assert.equal(after.value('hestia_service_starts_total', { service: 'svc', result: 'failure' }), 0);
  assert.equal(after.value('hestia_inflight_requests', { service: 'svc' }), 0);
  assert.equal(after.value('hestia_queued_requests', { service: 'svc' }), 0);
  // Unknown ids have only request and error series, never lifecycle or histogram ones.
  assert.equal(after.value('hestia_service_starts_total', { service: '_unknown', result: 'success' }), undefined);
  assert.equal(after.value('hestia_proxy_duration_seconds_count', { service: '_unknown' }), undefined);

  // The JSON view says the same.
  const json = await getJson(`${gw.url}/v1/metrics`);
  const counters = json.counters as Record<string, { count: number }>;
  assert.equal(
    counters['requests_total[method=GET,route=/services/{id},status_class=2xx]']?.count,
    after.sum('hestia_requests_total', { method: 'GET', status_class: '2xx' }),
  );
  assert.equal(counters.requests_total?.count, after.sum('hestia_requests_total'));
  assert.equal(counters['proxy_errors_total[code=HESTIA_UNKNOWN_SERVICE]']?.count, 1);
  const svc = (json.services as Record<string, Record<string, Record<string, Record<string, number>>>>).svc!;
  assert.equal(svc.timers!.proxy_duration_ms!.count, 7);
  assert.equal(svc.timers!.queue_wait_time_ms!.count, 3);
  assert.equal(svc.timers!.service_startup_duration_ms!.count, 1);
  assert.equal(svc.counters!['service_starts_total[result=success]']!.count, 1);
  assert.equal(svc.gauges!['service_state[state=hot]']!.value, 1);
  assert.equal(svc.histograms!.request_size_bytes!.count, 7);
  assert.equal(svc.histograms!.request_size_bytes!.p99! <= 5, true);
  const t = svc.timers!.proxy_duration_ms!;
  assert.ok(t.min_ms! <= t.p50! && t.p50! <= t.p95! && t.p95! <= t.p99! && t.p99! <= t.max_ms!, JSON.stringify(t));
  assert.ok(Math.abs(t.avg_ms! - t.total_ms! / t.count!) < 0.01);
});

test('idle shutdown, API stop, crash, failed start, queue rejection and timeout are counted', async () => {
  const [pIdle, pCrash, pFail, pGate] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const gate = tmp.path('metrics-queue.gate');
  const crashPids = tmp.path('metrics-crash.pids');
  const { gw, events } = await gateway({
    idle: fixtureService(pIdle, [], { idle_timeout_ms: 100 }),
    crashy: fixtureService(pCrash, ['--record-pid', crashPids]),
    broken: fixtureService(pFail, ['--boot-ms', '60000', '--exit-after-ms', '20', '--exit-code', '3']),
    gated: fixtureService(pGate, ['--fail-health-until-file', gate], { queue_size: 1, request_timeout_seconds: 1 }),
  });
  const before = await scrape(gw);

  await (await fetch(`${gw.url}/services/idle/`)).arrayBuffer();
  await events.nth('idle_shutdown', 1);
  await events.nth('service_stopped', 1);

  assert.equal((await fetch(`${gw.url}/v1/services/crashy/start`, { method: 'POST' })).status, 202);
  await events.nth('service_ready', 2);
  process.kill(readPids(crashPids)[0] ?? 0, 'SIGKILL');
  await events.nth('service_crashed', 1);

  assert.equal((await fetch(`${gw.url}/services/broken/`)).status, 503);

  const queued = fetch(`${gw.url}/services/gated/a`);
  await waitFor(() => gw.ctx.services.get('gated')?.status().queuePending === 1, { message: 'one queued' });
  const full = await fetch(`${gw.url}/services/gated/b`);
  assert.equal(full.status, 503);
  await full.arrayBuffer();
  assert.equal((await queued).status, 504);
  await events.nth('queue_rejected', 1);
  assert.equal((await fetch(`${gw.url}/v1/services/gated/stop`, { method: 'POST' })).status, 202);
  await events.nth('service_stopped', 2);
  writeFileSync(gate, '');

  const after = await scrape(gw);
  const delta = (name: string, labels: Record<string, string>) =>
    (after.value(name, labels) ?? 0) - (before.value(name, labels) ?? 0);
  assert.equal(delta('hestia_idle_shutdowns_total', { service: 'idle' }), 1);
  assert.equal(delta('hestia_service_stops_total', { service: 'idle', cause: 'idle' }), 1);
  assert.equal(delta('hestia_service_crashes_total', { service: 'crashy' }), 1);
  assert.equal(delta('hestia_service_starts_total', { service: 'crashy', result: 'success' }), 1);
  assert.equal(delta('hestia_service_starts_total', { service: 'broken', result: 'failure' }), 1);
  assert.equal(delta('hestia_queue_rejections_total', { service: 'gated' }), 1);
  assert.equal(delta('hestia_queue_timeouts_total', { service: 'gated' }), 1);
  assert.equal(delta('hestia_service_starts_total', { service: 'gated', result: 'cancelled' }), 1);
  assert.equal(delta('hestia_service_stops_total', { service: 'gated', cause: 'api' }), 1);
  assert.equal(delta('hestia_proxy_errors_total', { service: 'gated', code: 'HESTIA_QUEUE_FULL' }), 1);
  assert.equal(delta('hestia_proxy_errors_total', { service: 'gated', code: 'HESTIA_QUEUE_TIMEOUT' }), 1);
  assert.equal(delta('hestia_requests_total', req({ service: 'gated', method: 'GET', status_class: '5xx' })), 2);
  for (const id of ['idle', 'crashy', 'broken', 'gated'])
    assert.equal(after.value('hestia_service_state', { service: id, state: 'cold' }), 1, id);

  const one = await getJson(`${gw.url}/v1/services/crashy/metrics`);
  assert.equal((one.counters as Record<string, { count: number }>)['service_crashes_total']?.count, 1);
});

test('the JSON views keep the original shape: {counters, gauges, timers, histograms, services}', async (t) => {
  const up = await startUpstream();
  t.after(() => up.close());
  const { gw } = await gateway({
    a: { base_url: `http://127.0.0.1:${up.port}` },
    b: { base_url: 'http://127.0.0.1:9' },
  });
  await (await fetch(`${gw.url}/services/a/x`)).arrayBuffer();
  const json = await getJson(`${gw.url}/v1/metrics`);
  assert.deepEqual(Object.keys(json).sort(), ['counters', 'gauges', 'histograms', 'services', 'timers']);
  const iso = (v: unknown) => v === null || (typeof v === 'string' && !Number.isNaN(Date.parse(v)));
  for (const [k, c] of Object.entries(json.counters as Record<string, Record<string, unknown>>)) {
    assert.deepEqual(Object.keys(c).sort(), ['count', 'timestamp'], k);
    assert.equal(typeof c.count, 'number', k);
    assert.ok(iso(c.timestamp), k);
    assert.match(k, /^[a-z_]+(\[[a-z_]+=[^,\]]+(,[a-z_]+=[^,\]]+)*\])?$/, `key format name[k=v,…]: ${k}`);
  }
  const timerKeys = ['avg_ms', 'count', 'max_ms', 'min_ms', 'p50', 'p95', 'p99', 'timestamp', 'total_ms'];
  const histKeys = ['count', 'p50', 'p95', 'p99', 'timestamp', 'window'];
  const checkGroup = (g: Record<string, unknown>, where: string) => {
    for (const [k, t] of Object.entries(g.timers as Record<string, Record<string, unknown>>)) {
      assert.deepEqual(Object.keys(t).sort(), timerKeys, `${where} timer ${k}`);
    }
    for (const [k, h] of Object.entries(g.histograms as Record<string, Record<string, unknown>>)) {
      assert.deepEqual(Object.keys(h).sort(), histKeys, `${where} histogram ${k}`);
    }
    for (const [k, v] of Object.entries(g.gauges as Record<string, Record<string, unknown>>)) {
      assert.deepEqual(Object.keys(v).sort(), ['timestamp', 'value'], `${where} gauge ${k}`);
    }
  };
  checkGroup(json, 'top');
  assert.deepEqual(Object.keys(json.timers as object).sort(), [
    'proxy_duration_ms',
    'queue_wait_time_ms',
    'service_startup_duration_ms',
  ]);
  const services = json.services as Record<string, Record<string, unknown>>;
  // `b` never saw any traffic: it is counted in the totals but has no entry of its own.
  assert.deepEqual(Object.keys(services).sort(), ['a']);
  const gauges = json.gauges as Record<string, { value: number }>;
  assert.equal(gauges.services_total?.value, 2);
  assert.equal(gauges['services[state=cold]']?.value, 1);
  assert.equal(gauges['services[state=hot]']?.value, 1);
  for (const [id, s] of Object.entries(services)) {
    assert.deepEqual(Object.keys(s).sort(), ['counters', 'gauges', 'histograms', 'state', 'timers'], id);
    checkGroup(s, id);
  }
  assert.equal((services.a!.timers as Record<string, { count: number }>).proxy_duration_ms!.count, 1);

  // Asked for directly, an unused service answers zeros, and asking creates no series.
  const b = await getJson(`${gw.url}/v1/services/b/metrics`);
  assert.equal(b.state, 'cold');
  assert.equal((b.timers as Record<string, { count: number }>).proxy_duration_ms!.count, 0);
  assert.equal((b.counters as Record<string, { count: number }>).requests_total!.count, 0);
  assert.deepEqual(servicesIn(await scrape(gw)), ['a']);
  assert.deepEqual(Object.keys((await getJson(`${gw.url}/v1/metrics`)).services as object), ['a']);

  const one = await getJson(`${gw.url}/v1/services/a/metrics`);
  assert.deepEqual(Object.keys(one).sort(), ['counters', 'gauges', 'histograms', 'state', 'timers']);
  assert.deepEqual(one.counters, services.a!.counters);
  const missing = await fetch(`${gw.url}/v1/services/zzz/metrics`);
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as Record<string, unknown>).code, 'HESTIA_UNKNOWN_SERVICE');
});

test('10,000 requests to random paths, random unknown ids and odd methods leave the series count bounded', async (t) => {
  const up = await startUpstream();
  t.after(() => up.close());
  // Request lines are not what this test is about: keep 10,000 of them out of memory.
  const { gw } = await gateway({ a: { base_url: `http://127.0.0.1:${up.port}` } }, 'warn');
  const methods = ['GET', 'POST', 'DELETE', 'PROPFIND', 'PURGE'];
  // node:http with a keep-alive agent: the cheapest client, so the 10,000 requests stay quick.
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 32 });
  t.after(() => agent.destroy());
  const send = (path: string, method: string) =>
    new Promise<void>((resolve, reject) => {
      const r = httpRequest(`${gw.url}${path}`, { agent, method }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      r.on('error', reject);
      r.end();
    });
  const tokens: string[] = [];
  const fire = async (n: number) => {
    let i = 0;
    const worker = async () => {
      while (i < n) {
        const k = i++;
        const token = `t${Math.random().toString(36).slice(2, 10)}`;
        if (tokens.length < 50) tokens.push(token);
        const path =
          k % 2 === 0 ? `/services/a/${token}/${k}?q=${token}&k=${k}` : `/services/${token}/${token}?${token}=1`;
        await send(path, methods[k % methods.length]!);
      }
    };
    await Promise.all(Array.from({ length: 32 }, worker));
  };
  // Warm up so that every (method, status class) combination exists, then count series.
  await fire(200);
  const warm = await scrape(gw);
  const warmJsonKeys = Object.keys(((await getJson(`${gw.url}/v1/metrics`)) as { counters: object }).counters);
  await fire(10_000);
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const hot = parseExposition(text);
  assert.equal(hot.samples.length, warm.samples.length, 'no new series after 10,000 random requests');
  const json = await getJson(`${gw.url}/v1/metrics`);
  assert.deepEqual(Object.keys(json.counters as object), warmJsonKeys, 'no new JSON counters either');
  assert.deepEqual(Object.keys(json.services as object).sort(), ['a']);
  const serialized = text + JSON.stringify(json);
  for (const t of tokens) assert.ok(!serialized.includes(t), `random token ${t} leaked into metrics`);
  assert.ok(
    (hot.value('hestia_requests_total', req({ service: 'a', method: 'OTHER', status_class: '2xx' })) ?? 0) > 0,
    'PROPFIND/PURGE counted as OTHER',
  );
  assert.equal(hot.sum('hestia_requests_total'), 10_200);
  assert.equal(hot.sum('hestia_requests_total', { service: '_unknown' }), 5_100);
});

test('a request through the dispatcher (POST /v1/requests) is counted like one through /services', async () => {
  const upstream = await startUpstream();
  const { gw } = await gateway({ api: { base_url: `http://127.0.0.1:${upstream.port}` } });
  const before = await scrape(gw);
  const labels = { service: 'api', route: '/v1/requests', method: 'GET', status_class: '2xx' };
  const res = await fetch(`${gw.url}/v1/requests`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ serviceId: 'api', method: 'GET', path: '/x' }),
  });
  assert.equal(res.status, 200);
  assert.deepEqual(((await res.json()) as { body: unknown }).body, { ok: true, path: '/x' });
  const after = await scrape(gw);
  assert.equal(
    after.sum('hestia_requests_total', labels) - before.sum('hestia_requests_total', labels),
    1,
    'one dispatched request counted under route /v1/requests',
  );
  const line = gw.logs().find((l) => l.event_type === 'request' && l.route === '/v1/requests');
  assert.equal(line?.service_id, 'api', 'and logged once with the same fields as a proxied request');
  assert.equal(line?.upstream_status, 200);
  await upstream.close();
});

test('series follow use: a never-used service has none; a request or a start creates them; reading creates none', async (t) => {
  const up = await startUpstream();
  t.after(() => up.close());
  const port = await freePort();
  const { gw, events } = await gateway({
    used: { base_url: `http://127.0.0.1:${up.port}` },
    started: fixtureService(port, []),
    idle: { base_url: 'http://127.0.0.1:9' },
  });
  // Before anything happened: no service has a series, and reading both views changes nothing.
  assert.deepEqual(servicesIn(await scrape(gw)), []);
  assert.deepEqual(Object.keys((await getJson(`${gw.url}/v1/metrics`)).services as object), []);
  assert.equal((await getJson(`${gw.url}/v1/services/idle/metrics`)).state, 'cold');
  assert.deepEqual(servicesIn(await scrape(gw)), []);

  // One request: that service gets its request counters and all its lifecycle counters (at 0).
  await (await fetch(`${gw.url}/services/used/x`)).arrayBuffer();
  // A start through the API (no request): a lifecycle event, so that service appears too.
  assert.equal((await fetch(`${gw.url}/v1/services/started/start`, { method: 'POST' })).status, 202);
  // Two starts in all: `used` (started by its request, already answered) and `started`.
  await events.nth('service_ready', 2);
  assert.equal(events.of('service_ready', 'started').length, 1);
  const after = await scrape(gw);
  assert.deepEqual(servicesIn(after), ['started', 'used']);
  assert.equal(after.value('hestia_requests_total', req({ service: 'used', method: 'GET', status_class: '2xx' })), 1);
  assert.equal(after.value('hestia_service_crashes_total', { service: 'used' }), 0);
  assert.equal(after.value('hestia_service_starts_total', { service: 'started', result: 'success' }), 1);
  assert.equal(after.value('hestia_service_state', { service: 'started', state: 'hot' }), 1);
  assert.equal(after.sum('hestia_requests_total', { service: 'started' }), 0);
  const json = await getJson(`${gw.url}/v1/metrics`);
  assert.deepEqual(Object.keys(json.services as object).sort(), ['started', 'used']);
  const gauges = json.gauges as Record<string, { value: number }>;
  assert.equal(gauges.services_total?.value, 3, 'the totals still count every configured service');
});
