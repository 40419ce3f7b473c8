/**
 * The dashboard's per-service timelines (src/observability/request-timeline.ts) with an injected
 * clock: 10-second buckets, errors, p50/p95 from the latency bins, the 15-minute window, lazy
 * allocation, cold starts; and `GET /v1/dashboard` fed by real proxied requests.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HestiaEvent } from '../../src/observability/events.ts';
import type { ProxyRequestInfo } from '../../src/observability/request-record.ts';
import { RequestTimeline, TIMELINE_BUCKET_MS, TIMELINE_BUCKETS } from '../../src/observability/request-timeline.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { jsonHandler, startUpstream } from '../helpers/upstream.ts';

function req(service: string | null, duration_ms: number, status = 200, extra: Partial<ProxyRequestInfo> = {}) {
  return {
    request_id: 'r',
    service_id: service,
    method: 'GET',
    route: '/services/{id}',
    status,
    duration_ms,
    bytes_in: 0,
    bytes_out: 0,
    cold_start_ms: null,
    upstream: null,
    error: null,
    websocket: false,
    ...extra,
  } satisfies ProxyRequestInfo;
}

const ready = (serviceId: string, coldStartMs: number, ts = 0): HestiaEvent => ({
  ts,
  type: 'service_ready',
  serviceId,
  details: { coldStartMs },
});

describe('RequestTimeline', () => {
  test('buckets, errors and percentiles; sparse output; only services with traffic', () => {
    let now = 1_000 * TIMELINE_BUCKET_MS; // the start of a bucket
    const tl = new RequestTimeline(() => now);
    const all = new Set(['a', 'b', 'quiet']);
    for (let i = 0; i < 100; i++) tl.onRequestEnd(req('a', i < 50 ? 3 : 80)); // p50 in (2,5], p95 in (75,100]
    tl.onRequestEnd(req('a', 1, 502));
    tl.onRequestEnd(req('a', 1, 200, { error: 'HESTIA_UPSTREAM_UNREACHABLE' }));
    tl.onRequestEnd(req('a', 1, 499, { error: 'CLIENT_CLOSED' })); // the client leaving is not an error
    tl.onRequestEnd(req(null, 1)); // unknown service: not kept
    now += 2 * TIMELINE_BUCKET_MS;
    tl.onRequestEnd(req('b', 10, 200, { websocket: true, duration_ms: 60_000 }));
    assert.equal(tl.size, 2, 'nothing allocated for services without traffic');

    const snap = tl.snapshot({ ids: ['a', 'b', 'quiet'], configured: all });
    assert.equal(snap.buckets, TIMELINE_BUCKETS);
    assert.equal(snap.bucketMs, TIMELINE_BUCKET_MS);
    assert.deepEqual(Object.keys(snap.services).sort(), ['a', 'b']);
    const a = snap.services.a!;
    assert.deepEqual(a.at, [TIMELINE_BUCKETS - 3]);
    assert.deepEqual(a.count, [103]);
    assert.deepEqual(a.errors, [2]);
    assert.ok(a.p50[0]! > 2 && a.p50[0]! <= 5, `p50 ${a.p50[0]}`);
    assert.ok(a.p95[0]! > 75 && a.p95[0]! <= 100, `p95 ${a.p95[0]}`);
    const b = snap.services.b!;
    assert.deepEqual(b.at, [TIMELINE_BUCKETS - 1]);
    assert.deepEqual(b.p50, [null], "a WebSocket's open time is not a latency");

    // Incremental: from the last bucket only.
    const inc = tl.snapshot({ ids: ['a', 'b'], configured: all, since: now });
    assert.equal(inc.buckets, 1);
    assert.deepEqual(Object.keys(inc.services), ['b']);
  });

  test('the window is 15 minutes: old buckets fall out and ring slots are reused', () => {
    let now = 500 * TIMELINE_BUCKET_MS;
    const tl = new RequestTimeline(() => now);
    tl.onRequestEnd(req('a', 5));
    now += TIMELINE_BUCKETS * TIMELINE_BUCKET_MS; // the same ring slot, one lap later
    assert.equal(Object.keys(tl.snapshot({ ids: ['a'], configured: new Set(['a']) }).services).length, 0);
    tl.onRequestEnd(req('a', 5, 500));
    const s = tl.snapshot({ ids: ['a'], configured: new Set(['a']) }).services.a!;
    assert.deepEqual(s.count, [1], 'the slot was cleared before reuse');
    assert.deepEqual(s.errors, [1]);
  });

  test('cold starts: last and typical (median of the last 20); removed services are forgotten', () => {
    const tl = new RequestTimeline(() => 100 * TIMELINE_BUCKET_MS);
    for (const ms of [100, 300, 200]) tl.onEvent(ready('a', ms, Date.parse('2026-01-01T00:00:00Z')));
    tl.onRequestEnd(req('a', 1));
    let snap = tl.snapshot({ ids: ['a'], configured: new Set(['a']) });
    assert.deepEqual(snap.coldStarts.a, { lastMs: 200, typicalMs: 200, samples: 3, at: '2026-01-01T00:00:00.000Z' });
    for (let i = 0; i < 30; i++) tl.onEvent(ready('a', 1000));
    assert.equal(tl.snapshot({ ids: ['a'], configured: new Set(['a']) }).coldStarts.a?.samples, 20);
    // A poll from a later bucket leaves out cold starts before it.
    assert.deepEqual(
      tl.snapshot({ ids: ['a'], configured: new Set(['a']), since: 50 * TIMELINE_BUCKET_MS }).coldStarts,
      {},
    );
    snap = tl.snapshot({ ids: [], configured: new Set() });
    assert.equal(tl.size, 0);
    assert.deepEqual(snap.coldStarts, {});
  });
});

describe('GET /v1/dashboard', () => {
  test('statuses, machines and the timelines of real proxied requests; since is validated', async (t) => {
    const up = await startUpstream(jsonHandler((path) => ({ status: path === '/boom' ? 500 : 200, body: {} })));
    t.after(() => up.close());
    const gw = await startTestGateway({ services: { api: { base_url: up.url }, idle: { base_url: up.url } } });
    t.after(() => gw.close());
    for (const p of ['/a', '/b', '/boom']) await (await fetch(`${gw.url}/services/api${p}`)).arrayBuffer();
    const res = await fetch(`${gw.url}/v1/dashboard`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      services: Array<{ serviceId: string }>;
      machines: Array<{ id: string }>;
      machinesHtml: string;
      timeline: {
        services: Record<string, { count: number[]; errors: number[] }>;
        coldStarts: Record<string, unknown>;
      };
    };
    assert.deepEqual(body.services.map((s) => s.serviceId).sort(), ['api', 'idle']);
    assert.ok(Array.isArray(body.machines));
    // The machines panel as the page shows it, one card per machine, rendered by the server.
    for (const m of body.machines) assert.ok(body.machinesHtml.includes(`data-machine="${m.id}"`));
    assert.ok(body.machines.length > 0, 'at least the local machine');
    assert.deepEqual(Object.keys(body.timeline.services), ['api']);
    const api = body.timeline.services.api!;
    assert.equal(
      api.count.reduce((x, y) => x + y, 0),
      3,
    );
    assert.equal(
      api.errors.reduce((x, y) => x + y, 0),
      1,
    );
    assert.ok(body.timeline.coldStarts.api, 'the start of api (launcher none) is a cold start');

    const bad = await fetch(`${gw.url}/v1/dashboard?since=yesterday`);
    assert.equal(bad.status, 400);
    const err = (await bad.json()) as { code: string; field: string };
    assert.equal(err.code, 'HESTIA_BAD_REQUEST');
    assert.equal(err.field, 'since');
  });
});
