/**
 * SPEC §8 "Hardening" at the HTTP level, on raw sockets: every answer Hestia gives itself is the
 * envelope (parser errors, 408, 413, 414, 431, bad URLs, missing or doubled Host, deep JSON);
 * uploads have idle timeouts only; `Upgrade: h2c` is served as plain HTTP/1.1.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { type AddressInfo, connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { hardenServer, SERVER_OPTIONS } from '../../src/server/http-hygiene.ts';
import { json, parseRawResponse, type Sent, send, sendRaw, sendRawBytes } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { echoHandler, headerValues, type Received, startUpstream, type Upstream } from '../helpers/upstream.ts';

let up: Upstream;
let gw: TestGateway;
/** request_idle_timeout_ms: 400, for the upload tests. */
let idle: TestGateway;

before(async () => {
  up = await startUpstream(echoHandler);
  const services = { echo: { base_url: up.url } };
  gw = await startTestGateway({ services });
  idle = await startTestGateway({ services, server: { request_idle_timeout_ms: 400 } });
});

after(async () => {
  await gw.close();
  await idle.close();
  await up.close();
});

function assertEnvelope(r: Sent, status: number, code: string): void {
  assert.equal(r.status, status, r.body);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  const body = json(r);
  assert.equal(body.code, code, r.body);
  assert.equal(body.src, 'hestia');
  assert.equal(typeof body.error, 'string');
  assert.doesNotMatch(r.body, /\n\s+at /, 'no stack trace');
}

describe('envelope for what node:http and Fastify answer themselves', () => {
  test('a parser error (a header line without a colon) → 400 envelope', async () => {
    const r = await sendRaw(gw.url, 'GET /v1/services HTTP/1.1\r\nHost: localhost\r\nBad Header Line');
    assertEnvelope(r, 400, 'HESTIA_BAD_REQUEST');
  });

  test('headers larger than the limit → 431 envelope', async () => {
    const r = await sendRaw(gw.url, `GET /services/echo/x HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}`);
    assertEnvelope(r, 431, 'HESTIA_HEADERS_TOO_LARGE');
  });

  test('an HTTP/1.1 request without Host → 400 envelope, on both sides of the door', async () => {
    const before = up.requests.length;
    for (const path of ['/services/echo/x', '/v1/services']) {
      const r = await sendRawBytes(gw.url, `GET ${path} HTTP/1.1\r\nConnection: close\r\n\r\n`);
      assertEnvelope(r, 400, 'HESTIA_BAD_REQUEST');
    }
    assert.equal(up.requests.length, before);
  });

  test('two Host headers → 400 envelope, nothing forwarded (proxy, control plane, upgrade)', async () => {
    const before = up.requests.length;
    for (const path of ['/services/echo/x', '/v1/services']) {
      const r = await sendRaw(gw.url, `GET ${path} HTTP/1.1\r\nHost: a.example\r\nHost: b.example`);
      assertEnvelope(r, 400, 'HESTIA_BAD_REQUEST');
    }
    const ws = await sendRaw(
      gw.url,
      'GET /services/echo/ws HTTP/1.1\r\nHost: a\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    );
    assertEnvelope(ws, 400, 'HESTIA_BAD_REQUEST');
    assert.equal(up.requests.length, before);
  });

  test('an undecodable URL (FST_ERR_BAD_URL) → 400 envelope', async () => {
    const r = await sendRaw(gw.url, 'POST /v1/services/%E0%A4%A/start HTTP/1.1\r\nHost: localhost');
    assertEnvelope(r, 400, 'HESTIA_BAD_REQUEST');
  });

  test('a path parameter longer than the router allows → 414 envelope', async () => {
    const r = await sendRaw(gw.url, `GET /v1/services/${'a'.repeat(300)}/status HTTP/1.1\r\nHost: localhost`);
    assertEnvelope(r, 414, 'HESTIA_URI_TOO_LONG');
  });

  test('a control-plane body over the limit → 413 HESTIA_PAYLOAD_TOO_LARGE', async () => {
    const r = await sendRaw(
      gw.url,
      'POST /v1/requests HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 20000000',
    );
    assertEnvelope(r, 413, 'HESTIA_PAYLOAD_TOO_LARGE');
  });

  test('a 1M-deep JSON body → 400, not a 500', async () => {
    const depth = 1_000_000;
    const body = `{"serviceId":"echo","method":"POST","path":"/","body":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    for (const path of ['/v1/requests', '/v1/services/echo/start']) {
      const r = await send(gw.url, path, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      assertEnvelope(r, 400, 'HESTIA_BAD_REQUEST');
    }
    assert.equal(
      gw.logs().filter((l) => l.level === 50 || l.level === 'error').length,
      0,
      'nothing logged as an internal error',
    );
  });

  test("node:http's own 408 (headers not in time) is the envelope", async () => {
    // A server of its own: the headers timeout (60 s in the gateway) shortened, with the same hardening.
    const server = createServer({ ...SERVER_OPTIONS, headersTimeout: 200, connectionsCheckingInterval: 50 }, (_q, s) =>
      s.end('never'),
    );
    hardenServer(server, 0);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const r = await sendRawBytes(base, 'GET / HTTP/1.1\r\nHost: localhost\r\n');
      assertEnvelope(r, 408, 'HESTIA_REQUEST_TIMEOUT');
    } finally {
      server.close();
    }
  });
});

describe('uploads: idle timeouts only', () => {
  test('a slow streamed upload taking several idle periods in total passes', async () => {
    const u = new URL(idle.url);
    const socket = connect(Number(u.port), u.hostname);
    await once(socket, 'connect');
    socket.write(
      'POST /services/echo/slow HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
    );
    const answer = readAll(socket);
    // 8 chunks, 200 ms apart: 1.6 s in all, four times the 400 ms idle timeout, never idle that long.
    for (let i = 0; i < 8; i++) {
      await new Promise((r) => setTimeout(r, 200));
      socket.write('5\r\nhello\r\n');
    }
    socket.write('0\r\n\r\n');
    const r = parseRawResponse(await answer);
    assert.equal(r.status, 200, r.body);
    const got = JSON.parse(dechunk(r)) as Received;
    assert.equal(got.bodyLength, 40);
  });

  test('an upload that stops arriving gets 408 in the envelope and the connection closes', async () => {
    const before = up.requests.length;
    const u = new URL(idle.url);
    const socket = connect(Number(u.port), u.hostname);
    await once(socket, 'connect');
    socket.write(
      'POST /v1/requests HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ser',
    );
    const r = parseRawResponse(await readAll(socket));
    assertEnvelope(r, 408, 'HESTIA_REQUEST_TIMEOUT');
    assert.equal(up.requests.length, before);
  });
});

describe('Upgrade: h2c is ignored', () => {
  const h2c = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA';

  test('a proxied GET with Upgrade: h2c is served as HTTP/1.1 and forwarded without the upgrade', async () => {
    const r = await sendRaw(gw.url, `GET /services/echo/h2c HTTP/1.1\r\nHost: localhost\r\n${h2c}`);
    assert.equal(r.status, 200, r.body);
    const got = JSON.parse(r.body) as Received;
    assert.equal(got.url, '/h2c');
    assert.deepEqual(headerValues(got.rawHeaders, 'upgrade'), []);
    assert.deepEqual(headerValues(got.rawHeaders, 'http2-settings'), []);
  });

  test('a POST with a body and Upgrade: h2c reaches the upstream whole', async () => {
    const r = await sendRaw(
      gw.url,
      `POST /services/echo/h2c HTTP/1.1\r\nHost: localhost\r\n${h2c}\r\nContent-Length: 11`,
      'hello world',
    );
    assert.equal(r.status, 200, r.body);
    assert.equal((JSON.parse(r.body) as Received).bodyLength, 11);
  });

  test('the control plane answers an h2c request too', async () => {
    const r = await sendRaw(gw.url, `GET /healthz HTTP/1.1\r\nHost: localhost\r\n${h2c}`);
    assert.equal(r.status, 200, r.body);
  });
});

function readAll(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

function dechunk(r: Sent): string {
  if (r.headers['transfer-encoding'] !== 'chunked') return r.body;
  let rest = r.body;
  let out = '';
  for (;;) {
    const nl = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.slice(0, nl), 16);
    if (!size) return out;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
}
