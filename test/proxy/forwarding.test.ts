import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { json, send, sendRaw } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { echoHandler, headerValues, type Received, startUpstream, type Upstream } from '../helpers/upstream.ts';

let up: Upstream;
let sse: Upstream;
/** Answers `/sse` as an event stream and `/plain` as text, both with their own X-Accel-Buffering. */
let accel: Upstream;
let gw: TestGateway;
let trusting: TestGateway;
/** SSE: the upstream writes event N+1 only after the test acknowledged event N. */
const sseAcks: Array<() => void> = [];
let sseNext: Promise<void> = Promise.resolve();
let sseUpstreamDone: Promise<void> = Promise.resolve();

before(async () => {
  up = await startUpstream(echoHandler);
  sse = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    sseUpstreamDone = (async () => {
      for (let n = 1; n <= 5; n++) {
        sseNext = new Promise<void>((resolve) => sseAcks.push(resolve));
        res.write(`id: ${n}\ndata: event ${n}\n\n`);
        await sseNext;
      }
      res.end();
    })();
  });
  accel = await startUpstream((req, res) => {
    if (req.url === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'x-accel-buffering': 'no' });
      res.end('data: one\n\n');
    } else {
      res.writeHead(200, { 'content-type': 'text/plain', 'x-accel-buffering': 'yes' });
      res.end('plain');
    }
  });
  const services = {
    accel: { base_url: accel.url },
    echo: { base_url: up.url },
    prefixed: { base_url: `${up.url}/api` },
    'prefixed-slash': { base_url: `${up.url}/api/` },
    events: { base_url: sse.url },
  };
  gw = await startTestGateway({ services });
  trusting = await startTestGateway({ services, server: { trust_proxy: true } });
});

after(async () => {
  await gw.close();
  await trusting.close();
  await up.close();
  await sse.close();
  await accel.close();
});

function received(body: string): Received {
  return JSON.parse(body) as Received;
}

describe('methods', () => {
  for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
    test(`${method} is forwarded with its method`, async () => {
      const r = await send(gw.url, '/services/echo/m', { method });
      assert.equal(r.status, 200);
      assert.equal(received(r.body).method, method);
    });
  }

  test('HEAD is forwarded as HEAD and answers headers without a body', async () => {
    const before = up.requests.length;
    const r = await send(gw.url, '/services/echo/head-check', { method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(r.body, '');
    assert.deepEqual(up.requests.slice(before), [{ method: 'HEAD', url: '/head-check' }]);
  });

  test('a WebDAV method (PROPFIND) passes: the proxy is transparent for extension methods', async () => {
    const r = await send(gw.url, '/services/echo/dav', { method: 'PROPFIND' });
    assert.equal(r.status, 200);
    assert.equal(received(r.body).method, 'PROPFIND');
  });

  test('TRACE is refused with 405 and an Allow header, and never reaches the upstream', async () => {
    const before = up.requests.length;
    const r = await send(gw.url, '/services/echo/x', { method: 'TRACE' });
    assert.equal(r.status, 405);
    assert.equal(json(r).code, 'HESTIA_METHOD_NOT_ALLOWED');
    assert.match(String(r.headers.allow), /GET/);
    assert.equal(up.requests.length, before);
  });
});

describe('request target', () => {
  test('raw path and query reach the upstream untouched (a%2Fb, repeated keys, encoded space)', async () => {
    const r = await send(gw.url, '/services/echo/a%2Fb/c%20d?x=1&x=2&y=%20&z');
    assert.equal(received(r.body).url, '/a%2Fb/c%20d?x=1&x=2&y=%20&z');
  });

  test('/services/{id} and /services/{id}/ both reach the upstream root', async () => {
    assert.equal(received((await send(gw.url, '/services/echo')).body).url, '/');
    assert.equal(received((await send(gw.url, '/services/echo/')).body).url, '/');
    assert.equal(received((await send(gw.url, '/services/echo?q=1')).body).url, '/?q=1');
  });

  test('a base_url with a path prefix is joined with exactly one slash', async () => {
    assert.equal(received((await send(gw.url, '/services/prefixed/v1/models?a=b')).body).url, '/api/v1/models?a=b');
    assert.equal(received((await send(gw.url, '/services/prefixed-slash/v1')).body).url, '/api/v1');
    assert.equal(received((await send(gw.url, '/services/prefixed')).body).url, '/api/');
    assert.equal(received((await send(gw.url, '/services/prefixed-slash/')).body).url, '/api/');
  });

  for (const path of [
    '/services/echo/../x',
    '/services/echo/..',
    '/services/echo/a/../../x',
    '/services/echo/%2e%2e/x',
    '/services/echo/a/%2E%2E/%2e%2e/etc/passwd',
    '/services/echo/..%2f..%2fx',
    '/services/prefixed/.%2e/secret',
  ]) {
    test(`a dot-segment escape is refused with 400 and not forwarded: ${path}`, async () => {
      const before = up.requests.length;
      const r = await send(gw.url, path);
      assert.equal(r.status, 400);
      const body = json(r);
      assert.equal(body.code, 'HESTIA_BAD_REQUEST');
      assert.equal(body.src, 'hestia');
      assert.equal(up.requests.length, before);
    });
  }

  test('.. that stays inside the base, and .. in the query, are forwarded as sent', async () => {
    assert.equal(received((await send(gw.url, '/services/echo/a/../b')).body).url, '/a/../b');
    assert.equal(received((await send(gw.url, '/services/echo/x?p=../../y')).body).url, '/x?p=../../y');
  });

  test('an unknown service id is a 404 listing the configured services', async () => {
    const r = await send(gw.url, '/services/nope/x?y=1');
    assert.equal(r.status, 404);
    const body = json(r);
    assert.equal(body.code, 'HESTIA_UNKNOWN_SERVICE');
    assert.equal(body.error, "unknown service 'nope'");
    assert.equal(body.src, 'hestia');
    assert.ok(Array.isArray(body.services));
    assert.ok((body.services as string[]).includes('echo'));
  });

  test('/services without an id is a 404 in the Hestia envelope', async () => {
    const r = await send(gw.url, '/services');
    assert.equal(r.status, 404);
    assert.equal(json(r).src, 'hestia');
  });

  test('an absolute-form request target is never proxied to the host it names', async () => {
    const before = up.requests.length;
    const r = await send(gw.url, `http://127.0.0.1:${up.port}/services/echo/x`);
    assert.equal(r.status, 404);
    assert.equal(up.requests.length, before);
  });

  test('paths outside /services go to the control plane', async () => {
    const r = await send(gw.url, '/healthz');
    assert.equal(r.status, 200);
    assert.deepEqual(json(r), { status: 'ok' });
  });
});

describe('headers', () => {
  test('hop-by-hop headers and names listed in Connection are dropped; protected names are kept', async () => {
    const r = await sendRaw(
      gw.url,
      [
        'GET /services/echo/h HTTP/1.1',
        `Host: 127.0.0.1:${gw.port}`,
        'Connection: keep-alive, X-Drop-Me, X-Forwarded-For, Authorization, Content-Type',
        'X-Drop-Me: gone',
        'Keep-Alive: timeout=5',
        'TE: trailers',
        'Trailer: X-Foo',
        'Proxy-Authorization: Basic Zm9vOmJhcg==',
        'Proxy-Connection: keep-alive',
        'Upgrade: foo/1',
        'Authorization: Bearer upstream-token',
        'Content-Type: text/plain',
        'X-Keep: yes',
      ].join('\r\n'),
    );
    assert.equal(r.status, 200);
    const got = received(r.body).rawHeaders;
    // The gateway's own hop to the upstream is keep-alive (undici says so); nothing of the client's.
    assert.deepEqual(headerValues(got, 'connection'), ['keep-alive']);
    for (const name of [
      'keep-alive',
      'te',
      'trailer',
      'proxy-authorization',
      'proxy-connection',
      'upgrade',
      'x-drop-me',
    ]) {
      assert.deepEqual(headerValues(got, name), [], `${name} must not be forwarded`);
    }
    assert.deepEqual(headerValues(got, 'authorization'), ['Bearer upstream-token']);
    assert.deepEqual(headerValues(got, 'content-type'), ['text/plain']);
    assert.deepEqual(headerValues(got, 'x-keep'), ['yes']);
    assert.deepEqual(headerValues(got, 'x-forwarded-for'), ['127.0.0.1']);
  });

  test('duplicate end-to-end request headers arrive as sent', async () => {
    const r = await send(gw.url, '/services/echo/dup', { headers: ['X-Multi', 'a', 'X-Multi', 'b'] });
    assert.deepEqual(headerValues(received(r.body).rawHeaders, 'x-multi'), ['a', 'b']);
  });

  test('hop-by-hop response headers and names the upstream lists in Connection are dropped', async () => {
    const r = await send(gw.url, '/services/echo/hop');
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-upstream-public'], 'visible');
    assert.equal(r.headers['x-upstream-private'], undefined);
    assert.equal(r.headers['proxy-authenticate'], undefined);
    assert.notEqual(r.headers['keep-alive'], 'timeout=5');
  });

  test('Host is the upstream host; X-Forwarded-* are set and client values replaced (trust_proxy off)', async () => {
    const r = await send(gw.url, '/services/echo/fwd', {
      headers: { 'X-Forwarded-For': '6.6.6.6', 'X-Forwarded-Host': 'evil.example', 'X-Forwarded-Proto': 'https' },
    });
    const got = received(r.body).rawHeaders;
    assert.deepEqual(headerValues(got, 'host'), [`127.0.0.1:${up.port}`]);
    assert.deepEqual(headerValues(got, 'x-forwarded-for'), ['127.0.0.1']);
    assert.deepEqual(headerValues(got, 'x-forwarded-host'), [`127.0.0.1:${gw.port}`]);
    assert.deepEqual(headerValues(got, 'x-forwarded-proto'), ['http']);
  });

  test('with trust_proxy, X-Forwarded-For is appended to and X-Forwarded-Host/-Proto are kept', async () => {
    const r = await send(trusting.url, '/services/echo/fwd', {
      headers: { 'X-Forwarded-For': '6.6.6.6', 'X-Forwarded-Host': 'public.example', 'X-Forwarded-Proto': 'https' },
    });
    const got = received(r.body).rawHeaders;
    assert.deepEqual(headerValues(got, 'x-forwarded-for'), ['6.6.6.6, 127.0.0.1']);
    assert.deepEqual(headerValues(got, 'x-forwarded-host'), ['public.example']);
    assert.deepEqual(headerValues(got, 'x-forwarded-proto'), ['https']);
  });

  test('an incoming X-Request-ID is passed upstream and echoed', async () => {
    const r = await send(gw.url, '/services/echo/rid', { headers: { 'X-Request-ID': 'trace-abc.123' } });
    assert.deepEqual(headerValues(received(r.body).rawHeaders, 'x-request-id'), ['trace-abc.123']);
    assert.equal(r.headers['x-request-id'], 'trace-abc.123');
  });

  test('without X-Request-ID one is created, sent upstream and echoed', async () => {
    const r = await send(gw.url, '/services/echo/rid');
    const id = r.headers['x-request-id'];
    assert.match(String(id), /^[0-9a-f-]{36}$/);
    assert.deepEqual(headerValues(received(r.body).rawHeaders, 'x-request-id'), [id]);
  });

  test('an X-Request-ID that is too long or has odd characters is replaced', async () => {
    for (const bad of ['x'.repeat(300), 'has space', 'semi;colon', 'a<b>']) {
      const r = await send(gw.url, '/services/echo/rid', { headers: { 'X-Request-ID': bad } });
      const id = String(r.headers['x-request-id']);
      assert.notEqual(id, bad);
      assert.match(id, /^[0-9a-f-]{36}$/);
      assert.deepEqual(headerValues(received(r.body).rawHeaders, 'x-request-id'), [id]);
    }
  });

  test('Hestia error responses carry the request id too', async () => {
    const r = await send(gw.url, '/services/nope/x', { headers: { 'X-Request-ID': 'err-1' } });
    assert.equal(r.status, 404);
    assert.equal(r.headers['x-request-id'], 'err-1');
  });

  test('upstream 4xx and 5xx pass through unchanged (status and body)', async () => {
    for (const code of [404, 418, 500, 503]) {
      const r = await send(gw.url, `/services/echo/status/${code}`);
      assert.equal(r.status, code);
      assert.equal(received(r.body).url, `/status/${code}`);
    }
  });

  test('two Set-Cookie headers arrive as two headers', async () => {
    const r = await send(gw.url, '/services/echo/cookies');
    assert.deepEqual(headerValues(r.rawHeaders, 'set-cookie'), ['a=1; Path=/', 'b=2; HttpOnly']);
  });
});

describe('bodies', () => {
  test('a request body (Content-Length) is streamed upstream intact', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 7);
    const r = await send(gw.url, '/services/echo/upload', { method: 'POST', body });
    const got = received(r.body);
    assert.equal(got.bodyLength, body.length);
    assert.equal(got.bodySha256, createHash('sha256').update(body).digest('hex'));
    assert.deepEqual(headerValues(got.rawHeaders, 'content-length'), [String(body.length)]);
  });

  test('a chunked request body is streamed upstream intact', async () => {
    const parts = [randomBytes(70_000), randomBytes(1), randomBytes(200_000)];
    const r = await send(gw.url, '/services/echo/upload', { method: 'PUT', body: Readable.from(parts) });
    const got = received(r.body);
    const all = Buffer.concat(parts);
    assert.equal(got.bodyLength, all.length);
    assert.equal(got.bodySha256, createHash('sha256').update(all).digest('hex'));
  });

  test('Expect: 100-continue is answered by the gateway and not forwarded', async () => {
    const r = await send(gw.url, '/services/echo/expect', {
      method: 'POST',
      headers: { Expect: '100-continue', 'Content-Length': '5' },
      body: 'hello',
    });
    const got = received(r.body);
    assert.equal(got.bodyLength, 5);
    assert.deepEqual(headerValues(got.rawHeaders, 'expect'), []);
  });

  test('an event stream whose upstream sent X-Accel-Buffering: no gets that header once, not twice', async () => {
    const r = await send(gw.url, '/services/accel/sse');
    assert.equal(r.status, 200);
    assert.deepEqual(headerValues(r.rawHeaders, 'x-accel-buffering'), ['no']);
    assert.equal(r.body, 'data: one\n\n');
  });

  test("a response that is not an event stream keeps the upstream's X-Accel-Buffering as sent", async () => {
    const r = await send(gw.url, '/services/accel/plain');
    assert.deepEqual(headerValues(r.rawHeaders, 'x-accel-buffering'), ['yes']);
  });

  test('an SSE stream reaches the client event by event while the upstream is still writing', async () => {
    const u = new URL(gw.url);
    const events: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: u.hostname, port: u.port, path: '/services/events/stream', agent: false }, (res) => {
        assert.equal(res.statusCode, 200);
        assert.equal(res.headers['x-accel-buffering'], 'no');
        assert.match(String(res.headers['content-type']), /^text\/event-stream/);
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let end = buf.indexOf('\n\n');
          while (end !== -1) {
            events.push(buf.slice(0, end));
            buf = buf.slice(end + 2);
            // Only now may the upstream write the next event: if the gateway buffered, this
            // test would never see event 2 (and time out).
            sseAcks.shift()?.();
            end = buf.indexOf('\n\n');
          }
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
    await sseUpstreamDone;
    assert.deepEqual(
      events,
      [1, 2, 3, 4, 5].map((n) => `id: ${n}\ndata: event ${n}`),
    );
  });
});
