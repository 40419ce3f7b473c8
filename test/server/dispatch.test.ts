/**
 * `POST /v1/requests` over HTTP against real upstreams: a real gateway (startTestGateway) for
 * the answers, and the real server + proxy around hand-driven services (startProxyGateway) for
 * lease accounting: a lease is released exactly once whatever happens, a client that leaves
 * leaves the queue, and an upstream exchange in flight is aborted.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import { type IncomingMessage, request, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { ServiceConfig } from '../../src/config/schema.ts';
import type { AcquireOptions, Lease } from '../../src/services/types.ts';
import { json, type Sent, send } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { refusedPort } from '../helpers/net.ts';
import { ControlledService, type ProxyGateway, startProxyGateway } from '../helpers/service-doubles.ts';
import { echoHandler, headerValues, type Received, startUpstream, type Upstream } from '../helpers/upstream.ts';

const CAP = 1024;
const BIN = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80]);
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Named answers by path; anything else is echoed (what the upstream received). */
function answers(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '').replace(/^\/base/, '');
  switch (path) {
    case '/json':
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'x-upstream': 'yes' });
      res.end('{"ok":true,"n":[1,2.5],"s":"é"}');
      return;
    case '/text':
      res.writeHead(201, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('héllo\nworld');
      return;
    case '/bin':
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(BIN);
      return;
    case '/error':
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('upstream broke');
      return;
    case '/big':
      res.writeHead(200, { 'content-type': 'text/plain' });
      // Written in pieces so the cap is crossed mid-stream, not on one chunk.
      for (let i = 0; i < 8; i++) res.write('y'.repeat(512));
      res.end();
      return;
    default:
      echoHandler(req, res);
  }
}

function dispatch(base: string, body: unknown, headers: Record<string, string> = {}): Promise<Sent> {
  return send(base, '/v1/requests', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

interface Dispatched {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  bodyEncoding?: string;
}

describe('POST /v1/requests through a real gateway', () => {
  let gw: TestGateway;
  let up: Upstream;
  let a: Upstream;
  let b: Upstream;
  let hold: Upstream;
  const holdArrived = new EventEmitter();

  before(async () => {
    up = await startUpstream(answers);
    hold = await startUpstream((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('started');
      holdArrived.emit('request');
    });
    a = await startUpstream(echoHandler);
    b = await startUpstream(echoHandler);
    const dead = await refusedPort();
    gw = await startTestGateway({
      dispatcher: { max_response_bytes: CAP },
      services: {
        api: { base_url: up.url },
        based: { base_url: `${up.url}/base/` },
        down: { base_url: `http://127.0.0.1:${dead}` },
        lb: { base_url: up.url, strategy: 'load_balancer', instances: [{ url: a.url }, { url: b.url }] },
        models: { base_url: up.url, strategy: 'model_router', routing: { by_model: { m1: b.url } } },
        held: { base_url: hold.url },
      },
    });
  });

  after(async () => {
    await gw.close();
    for (const u of [up, a, b, hold]) await u.close();
  });

  async function ok(body: unknown, headers: Record<string, string> = {}): Promise<Dispatched & { sent: Sent }> {
    const r = await dispatch(gw.url, body, headers);
    assert.equal(r.status, 200, r.body);
    return { ...(json(r) as unknown as Dispatched), sent: r };
  }

  test('a JSON answer comes back parsed, with the upstream headers', async () => {
    const r = await ok({ serviceId: 'api', method: 'get', path: '/json' });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, { ok: true, n: [1, 2.5], s: 'é' });
    assert.equal(r.bodyEncoding, undefined);
    assert.equal(r.headers['x-upstream'], 'yes');
    assert.equal(r.headers['content-type'], 'application/json; charset=utf-8');
    assert.ok(r.sent.headers['x-request-id'], 'the dispatch response carries its request id');
  });

  test('text comes back as a string; binary as base64 with bodyEncoding', async () => {
    const t = await ok({ serviceId: 'api', method: 'GET', path: '/text' });
    assert.deepEqual([t.status, t.body, t.bodyEncoding], [201, 'héllo\nworld', undefined]);
    const bin = await ok({ serviceId: 'api', method: 'GET', path: '/bin' });
    assert.equal(bin.bodyEncoding, 'base64');
    assert.deepEqual(Buffer.from(bin.body as string, 'base64'), BIN);
  });

  test("the upstream's 404 and 500 are passed as `status`, not as the dispatcher's own status", async () => {
    const nf = await ok({ serviceId: 'api', method: 'GET', path: '/status/404' });
    assert.equal(nf.status, 404);
    assert.equal((nf.body as Received).url, '/status/404');
    const err = await ok({ serviceId: 'api', method: 'GET', path: '/error' });
    assert.deepEqual([err.status, err.body], [500, 'upstream broke']);
  });

  test('method, path (joined to the base path), query, headers and body reach the upstream; repeated Set-Cookie joined', async () => {
    const r = await ok(
      {
        serviceId: 'based',
        method: 'PUT',
        path: '/cookies/x%2Fy?q=1&r=a%20b',
        headers: {
          'X-Custom': 'v',
          Authorization: 'Bearer upstream-token',
          Connection: 'x-drop',
          'X-Drop': 'gone',
          Host: 'evil.example',
          'X-Request-ID': 'dispatch-42',
        },
        body: { hello: 'wörld', list: [1, 2] },
      },
      { 'X-Request-ID': 'ignored-because-given' },
    );
    const got = r.body as Received;
    assert.equal(got.method, 'PUT');
    assert.equal(got.url, '/base/cookies/x%2Fy?q=1&r=a%20b');
    const sent = JSON.stringify({ hello: 'wörld', list: [1, 2] });
    assert.equal(got.bodySha256, sha(sent));
    assert.deepEqual(headerValues(got.rawHeaders, 'content-type'), ['application/json']);
    assert.deepEqual(headerValues(got.rawHeaders, 'x-custom'), ['v']);
    assert.deepEqual(headerValues(got.rawHeaders, 'authorization'), ['Bearer upstream-token']);
    assert.deepEqual(headerValues(got.rawHeaders, 'x-drop'), [], 'a header named in Connection is hop-by-hop');
    assert.deepEqual(headerValues(got.rawHeaders, 'host'), [new URL(up.url).host]);
    assert.deepEqual(headerValues(got.rawHeaders, 'x-request-id'), ['dispatch-42']);
    assert.deepEqual(headerValues(got.rawHeaders, 'x-forwarded-for'), ['127.0.0.1']);
    assert.equal(r.sent.headers['x-request-id'], 'dispatch-42');
    const cookies = await ok({ serviceId: 'api', method: 'GET', path: '/cookies' });
    assert.equal(cookies.headers['set-cookie'], 'a=1; Path=/\nb=2; HttpOnly');
  });

  test('a base64 body is sent as its bytes', async () => {
    const r = await ok({
      serviceId: 'api',
      method: 'POST',
      path: '/upload',
      headers: { 'content-type': 'application/octet-stream' },
      body: BIN.toString('base64'),
      bodyEncoding: 'base64',
    });
    const got = r.body as Received;
    assert.equal(got.bodyLength, BIN.length);
    assert.equal(got.bodySha256, sha(BIN));
  });

  test('the routing strategy applies: load_balancer alternates, model_router reads the dispatched body', async () => {
    for (let i = 0; i < 4; i++) await ok({ serviceId: 'lb', method: 'GET', path: `/lb/${i}` });
    assert.equal(a.requests.filter((r) => r.url.startsWith('/lb/')).length, 2);
    assert.equal(b.requests.filter((r) => r.url.startsWith('/lb/')).length, 2);
    const m = await ok({ serviceId: 'models', method: 'POST', path: '/api/generate', body: { model: 'm1', p: 1 } });
    assert.equal(b.requests.filter((r) => r.url === '/api/generate').length, 1);
    assert.equal((m.body as Received).bodySha256, sha(JSON.stringify({ model: 'm1', p: 1 })));
    const line = gw.logs().find((l) => l.route === '/v1/requests' && l.service_id === 'models');
    assert.equal(line?.route_reason, "model 'm1' → by_model");
  });

  test('400 HESTIA_VALIDATION names the field (representative cases; the pure tests cover the rest)', async () => {
    const cases: Array<[unknown, string]> = [
      [{ method: 'GET', path: '/' }, 'serviceId'],
      [{ serviceId: 'api', method: 'TRACE', path: '/' }, 'method'],
      [{ serviceId: 'api', method: 'GET', path: 'http://evil.example/' }, 'path'],
      [{ serviceId: 'api', method: 'GET', path: '//evil.example/x' }, 'path'],
      [{ serviceId: 'api', method: 'GET', path: '/a/%2e%2e/%2E%2e/etc/passwd' }, 'path'],
      [{ serviceId: 'api', method: 'GET', path: '/a/%252e%252e/%252e%252e/x' }, 'path'],
      [{ serviceId: 'api', method: 'GET', path: '/x', headers: { 'bad name': 'v' } }, 'headers.bad name'],
      [{ serviceId: 'api', method: 'HEAD', path: '/x', body: 'no' }, 'body'],
    ];
    const before = up.requests.length;
    for (const [body, field] of cases) {
      const r = await dispatch(gw.url, body);
      assert.equal(r.status, 400, `${JSON.stringify(body)} → ${r.body}`);
      const e = json(r);
      assert.equal(e.code, 'HESTIA_VALIDATION');
      assert.equal(e.field, field, JSON.stringify(body));
    }
    assert.equal(up.requests.length, before, 'nothing was forwarded');
  });

  test('unknown service → 404 HESTIA_UNKNOWN_SERVICE listing the services', async () => {
    const r = await dispatch(gw.url, { serviceId: 'nope', method: 'GET', path: '/' });
    assert.equal(r.status, 404);
    const e = json(r);
    assert.equal(e.code, 'HESTIA_UNKNOWN_SERVICE');
    assert.ok((e.services as string[]).includes('api'));
  });

  test('a response over dispatcher.max_response_bytes → 502 HESTIA_RESPONSE_TOO_LARGE', async () => {
    const r = await dispatch(gw.url, { serviceId: 'api', method: 'GET', path: '/big' });
    assert.equal(r.status, 502);
    const e = json(r);
    assert.equal(e.code, 'HESTIA_RESPONSE_TOO_LARGE');
    assert.match(e.error as string, /max_response_bytes \(1024 bytes\)/);
    assert.equal(e.limitBytes, CAP);
  });

  test('real lifecycle: a client that leaves mid-dispatch ends the request in flight (status inflight back to 0)', async () => {
    const inflight = async () => json(await send(gw.url, '/v1/services/held/status')).inflight;
    const arrived = once(holdArrived, 'request');
    const u = new URL(gw.url);
    const req = request({
      host: u.hostname,
      port: u.port,
      path: '/v1/requests',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      agent: false,
    });
    req.on('error', () => {});
    req.end(JSON.stringify({ serviceId: 'held', method: 'GET', path: '/forever' }));
    await arrived;
    assert.equal(await inflight(), 1);
    req.destroy();
    // The gateway aborts the upstream request when it releases the lease (same turn), so once
    // the upstream has seen its connection close, the lease is gone.
    await hold.waitForConnections(0);
    assert.equal(await inflight(), 0);
  });

  test('an unreachable upstream is the proxy error (502 HESTIA_UPSTREAM_UNREACHABLE)', async () => {
    const r = await dispatch(gw.url, { serviceId: 'down', method: 'GET', path: '/' });
    assert.equal(r.status, 502);
    assert.equal(json(r).code, 'HESTIA_UPSTREAM_UNREACHABLE');
  });
});

/** A ControlledService that announces leases granted and released, and waiters that gave up. */
class TrackedService extends ControlledService {
  readonly releases = new EventEmitter();
  async waitForLease(n: number): Promise<void> {
    while (this.leasesGranted < n) await once(this.releases, 'granted');
  }
  private wrap(l: Lease): Lease {
    this.releases.emit('granted');
    return {
      ...l,
      touch: () => l.touch(),
      release: () => {
        l.release();
        this.releases.emit('released');
      },
    };
  }
  override tryAcquire(): Lease | null {
    const l = super.tryAcquire();
    return l === null ? null : this.wrap(l);
  }
  override async acquire(opts?: AcquireOptions): Promise<Lease> {
    let lease: Lease;
    try {
      lease = await super.acquire(opts);
    } catch (err) {
      this.releases.emit('left');
      throw err;
    }
    return this.wrap(lease);
  }
}

describe('leases: released exactly once, and a client that leaves takes nothing with it', () => {
  let gw: ProxyGateway & { handles: Map<string, unknown> };
  let held: Upstream;
  let echo: Upstream;
  const arrived = new EventEmitter();

  before(async () => {
    // Answers the head and one chunk, then never finishes: an exchange in flight for as long as needed.
    held = await startUpstream((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('started');
      arrived.emit('request');
    });
    echo = await startUpstream(answers);
    gw = await startProxyGateway(
      {
        hold: { base_url: held.url },
        api: { base_url: echo.url },
        cold: { base_url: echo.url },
        models: { base_url: echo.url, strategy: 'model_router', routing: { by_model: { m: echo.url } } },
      },
      {
        make: (id: string, c: ServiceConfig) => new TrackedService(id, c),
        config: { dispatcher: { max_response_bytes: CAP } },
      },
    );
    for (const id of ['hold', 'api', 'models']) svc(id).state = 'hot';
  });

  after(async () => {
    await gw.close();
    await held.close();
    await echo.close();
  });

  function svc(id: string): TrackedService {
    return gw.handles.get(id) as TrackedService;
  }

  /** Send a dispatch on its own connection; the caller may destroy it. */
  function open(body: unknown) {
    const u = new URL(gw.url);
    const req = request({
      host: u.hostname,
      port: u.port,
      path: '/v1/requests',
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      agent: false,
    });
    req.on('error', () => {});
    req.end(JSON.stringify(body));
    return req;
  }

  test('every answered dispatch (success, upstream error status, over the cap) releases its lease once', async () => {
    const s = svc('api');
    for (const path of ['/json', '/status/500', '/big']) {
      await dispatch(gw.url, { serviceId: 'api', method: 'GET', path });
    }
    assert.deepEqual([s.leasesGranted, s.leasesReleased, s.extraReleases], [3, 3, 0]);
  });

  test('a client that leaves during the upstream response: the upstream exchange is aborted, the lease released', async () => {
    const s = svc('hold');
    const released = once(s.releases, 'released');
    const arrivedNow = once(arrived, 'request');
    const req = open({ serviceId: 'hold', method: 'GET', path: '/stream' });
    await arrivedNow;
    assert.equal(s.leasesHeld, 1);
    req.destroy();
    await released;
    await held.waitForConnections(0);
    assert.deepEqual([s.leasesHeld, s.extraReleases], [0, 0]);
  });

  test('a client that leaves while queued for a cold service leaves the queue and never gets a lease', async () => {
    const s = svc('cold');
    const req = open({ serviceId: 'cold', method: 'GET', path: '/json' });
    await s.waitQueued(1);
    assert.deepEqual(s.starts, ['request'], 'the dispatch started the service');
    const left = once(s.releases, 'left');
    req.destroy();
    await left;
    assert.equal(s.queued, 0);
    s.makeHot();
    assert.deepEqual([s.leasesGranted, s.leasesReleased], [0, 0]);
  });

  test('proxy: a client that leaves while its body is read for model routing releases the lease', async () => {
    const s = svc('models');
    const granted = s.leasesGranted;
    const released = once(s.releases, 'released');
    const u = new URL(gw.url);
    const req = request({
      host: u.hostname,
      port: u.port,
      path: '/services/models/api/generate',
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': '1000' },
      agent: false,
    });
    req.on('error', () => {});
    // Part of the body, then gone: the strategy never sees a whole body.
    req.write('{"model":"m","prompt":"');
    await s.waitForLease(granted + 1);
    req.destroy();
    await released;
    await gw.waitReports(1);
    const report = gw.reports.find((r) => r.service_id === 'models');
    assert.equal(report?.status, 499);
    assert.equal(report?.error, 'CLIENT_CLOSED');
    assert.deepEqual([s.leasesHeld, s.extraReleases], [0, 0]);
    assert.equal(echo.requests.filter((r) => r.url === '/api/generate').length, 0, 'nothing was forwarded');
  });
});
