/**
 * The proxy against services that are not hot, through ControlledService (a hand-driven
 * implementation of the ServiceHandle interface): waiting page, held API clients, cold-start
 * header, queue errors, lease accounting, and the observer / request log.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type IncomingMessage, request } from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { json, send } from '../helpers/client.ts';
import { type ControlledService, type ProxyGateway, startProxyGateway } from '../helpers/service-doubles.ts';
import { echoHandler, type Received, startUpstream, type Upstream } from '../helpers/upstream.ts';

let up: Upstream;
let gw: ProxyGateway & { handles: Map<string, import('../../src/services/types.ts').ServiceHandle> };
let held: Upstream;
let releaseHeld: (() => void) | null = null;

function svc(id: string): ControlledService {
  return gw.handles.get(id) as ControlledService;
}

before(async () => {
  up = await startUpstream(echoHandler);
  // Answers only when the test says so: a request that is in flight for as long as we like.
  held = await startUpstream((_req, res) => {
    releaseHeld = () => res.end('done');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('started');
  });
  gw = await startProxyGateway({
    web: { base_url: up.url, waiting_page: true },
    api: { base_url: up.url },
    slow: { base_url: held.url },
  });
});

after(async () => {
  await gw.close();
  await up.close();
  await held.close();
});

beforeEach(() => {
  for (const h of gw.handles.values()) {
    const c = h as ControlledService;
    c.state = 'cold';
  }
});

/** Send a GET now; the caller reads the response itself. */
function open(path: string) {
  const u = new URL(gw.url);
  const req = request({ host: u.hostname, port: u.port, path, agent: false });
  req.on('error', () => {});
  req.end();
  const response = new Promise<IncomingMessage>((resolve) => req.on('response', resolve));
  return { req, response };
}

/** Start a request and collect its response; the request is sent at once. */
function pending(path: string, headers: Record<string, string> = {}) {
  const u = new URL(gw.url);
  const req = request({ host: u.hostname, port: u.port, path, headers, agent: false });
  req.on('error', () => {});
  req.end();
  // Never rejects: tests that destroy the request do not await it.
  const response = new Promise<IncomingMessage>((resolve) => req.on('response', resolve)).then(async (res) => {
    let body = '';
    res.setEncoding('utf8');
    for await (const c of res) body += c;
    return { status: res.statusCode ?? 0, headers: res.headers, body };
  });
  return { req, response };
}

describe('waiting page', () => {
  test('a browser navigation to a cold service gets the waiting page at once and starts it', async () => {
    const r = await send(gw.url, '/services/web/notebook', {
      headers: { Accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' },
    });
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^text\/html/);
    assert.equal(r.headers['cache-control'], 'no-store');
    // It follows the start by itself (test/visibility/waiting-page.test.ts); without JavaScript it reloads.
    assert.match(r.body, /<noscript><meta http-equiv="refresh" content="5"><\/noscript>/);
    assert.match(r.body, /web is starting/);
    assert.deepEqual(svc('web').starts, ['waiting_page']);
    assert.equal(svc('web').leasesHeld, 0);
  });

  test('an API client of the same cold service is held until it is hot, then proxied with X-Hestia-Cold-Start', async () => {
    const web = svc('web');
    const p = pending('/services/web/api/items?x=1', { Accept: 'application/json' });
    await web.waitQueued(1);
    web.makeHot(1234);
    const r = await p.response;
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as Received).url, '/api/items?x=1');
    assert.equal(r.headers['x-hestia-cold-start'], '1234');
  });

  test('no waiting page for a service without waiting_page, nor for a hot one', async () => {
    const api = svc('api');
    const p = pending('/services/api/', { Accept: 'text/html' });
    await api.waitQueued(1);
    api.makeHot();
    assert.equal((await p.response).status, 200);

    svc('web').state = 'hot';
    const r = await send(gw.url, '/services/web/', { headers: { Accept: 'text/html' } });
    assert.equal((JSON.parse(r.body) as Received).url, '/');
    assert.equal(r.headers['x-hestia-cold-start'], undefined);
  });
});

describe('queueing and leases', () => {
  test('a start failure reaches the client as the service error (503 with details)', async () => {
    const api = svc('api');
    const p = pending('/services/api/x');
    await api.waitQueued(1);
    api.failStart();
    const r = await p.response;
    assert.equal(r.status, 503);
    const body = JSON.parse(r.body) as Record<string, unknown>;
    assert.equal(body.code, 'HESTIA_START_FAILED');
    assert.equal(body.serviceId, 'api');
  });

  test('a client that leaves while queued leaves the queue and never holds a lease', async () => {
    const api = svc('api');
    const before = api.leasesGranted;
    const n = gw.reports.length;
    const p = pending('/services/api/x');
    await api.waitQueued(1);
    p.req.destroy();
    // The exchange ends (one report, status 499) and its abort signal removed the waiter.
    await gw.waitReports(n + 1);
    assert.equal(gw.reports[n]!.status, 499);
    assert.equal(gw.reports[n]!.error, 'CLIENT_CLOSED');
    assert.equal(api.queued, 0);
    api.makeHot();
    assert.equal(api.leasesGranted, before);
    assert.equal(api.leasesHeld, 0);
  });

  test('a long response holds its lease until it ends; then it is released exactly once', async () => {
    const slow = svc('slow');
    slow.state = 'hot';
    const p = open('/services/slow/gen');
    const res = await p.response;
    assert.equal(res.statusCode, 200);
    assert.equal(slow.leasesHeld, 1, 'in flight while streaming');
    const n = gw.reports.length;
    releaseHeld?.();
    res.resume();
    await once(res, 'end');
    await gw.waitReports(n + 1);
    assert.equal(slow.leasesHeld, 0);
    assert.equal(slow.extraReleases, 0);
  });

  test('a client that disconnects mid-response releases the lease exactly once', async () => {
    const slow = svc('slow');
    slow.state = 'hot';
    const n = gw.reports.length;
    const p = open('/services/slow/gen');
    const res = await p.response;
    await once(res, 'data');
    p.req.destroy();
    await gw.waitReports(n + 1);
    assert.equal(slow.leasesHeld, 0);
    assert.equal(slow.extraReleases, 0);
    const report = gw.reports[n]!;
    assert.equal(report.error, 'CLIENT_CLOSED');
    assert.equal(report.status, 200);
  });

  test('errors and successes alike leave no lease behind', async () => {
    const api = svc('api');
    api.state = 'hot';
    for (const path of ['/services/api/a', '/services/api/status/500', '/services/api/../x']) await send(gw.url, path);
    assert.equal(api.leasesHeld, 0);
    assert.equal(api.extraReleases, 0);
  });
});

describe('observer and request log', () => {
  test('one report and one info log line per request, with a normalised route', async () => {
    const api = svc('api');
    api.state = 'hot';
    const n = gw.reports.length;
    const r = await send(gw.url, '/services/api/private/path?token=s3cr3t', {
      method: 'POST',
      body: 'hello',
      headers: { 'X-Request-ID': 'obs-1' },
    });
    await gw.waitReports(n + 1);
    const report = gw.reports[n]!;
    assert.deepEqual(
      { ...report, duration_ms: 0 },
      {
        request_id: 'obs-1',
        service_id: 'api',
        method: 'POST',
        route: '/services/{id}',
        status: 200,
        duration_ms: 0,
        bytes_in: 5,
        bytes_out: Buffer.byteLength(r.body),
        cold_start_ms: null,
        upstream: up.url,
        error: null,
        websocket: false,
        door: 'path',
      },
    );
    assert.ok(report.duration_ms >= 0);
    const lines = gw.logs().filter((l) => l.event_type === 'request' && l.request_id === 'obs-1');
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, 'info');
    assert.equal(lines[0]!.route, '/services/{id}');
    assert.doesNotMatch(JSON.stringify(gw.logs()), /s3cr3t|private\/path/);
  });

  test('a cold start is reported with its wait; an unknown id is reported without a service id', async () => {
    const api = svc('api');
    const n = gw.reports.length;
    const p = pending('/services/api/x', { 'X-Request-ID': 'obs-2' });
    await api.waitQueued(1);
    api.makeHot(77);
    await p.response;
    const r = await send(gw.url, '/services/does-not-exist/x', { headers: { 'X-Request-ID': 'obs-3' } });
    assert.equal(r.status, 404);
    await gw.waitReports(n + 2);
    const cold = gw.reports.find((x) => x.request_id === 'obs-2')!;
    assert.equal(cold.cold_start_ms, 77);
    const unknown = gw.reports.find((x) => x.request_id === 'obs-3')!;
    assert.equal(unknown.service_id, null);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.error, 'HESTIA_UNKNOWN_SERVICE');
  });
});

describe('shutting down', () => {
  test('new requests get 503 HESTIA_SHUTTING_DOWN', async () => {
    const g = await startProxyGateway({ api: { base_url: up.url } });
    (g.handles.get('api') as ControlledService).state = 'hot';
    assert.equal((await send(g.url, '/services/api/')).status, 200);
    g.setShuttingDown(true);
    const r = await send(g.url, '/services/api/');
    assert.equal(r.status, 503);
    assert.equal(json(r).code, 'HESTIA_SHUTTING_DOWN');
    await g.close();
  });
});
