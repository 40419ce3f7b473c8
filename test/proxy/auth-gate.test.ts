/**
 * The proxy behind the gateway's real auth (main's wiring, auth/request-guards.ts gateProxyRequest):
 * `/services/*` requests and upgrades need a key, and the key never reaches the upstream.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { json, send } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { echoHandler, headerValues, type Received, startUpstream, type Upstream } from '../helpers/upstream.ts';

const KEY = 'hk_proxy_test_key_0123456789';
const dir = mkdtempSync(join(tmpdir(), 'hestia-proxy-auth-'));
let up: Upstream;
let wss: WebSocketServer;
let gw: TestGateway;

before(async () => {
  up = await startUpstream(echoHandler);
  wss = new WebSocketServer({ server: up.server });
  gw = await startTestGateway({
    server: { db_path: join(dir, 'hestia.db') },
    auth: { enabled: true, api_keys: [{ name: 'test', sha256: hashApiKey(KEY) }] },
    services: { echo: { base_url: up.url } },
  });
});

after(async () => {
  await gw.close();
  wss.close();
  await up.close();
  rmSync(dir, { recursive: true, force: true });
});

test('without a key: 401 and nothing reaches the upstream', async () => {
  const before = up.requests.length;
  const r = await send(gw.url, '/services/echo/x');
  assert.equal(r.status, 401);
  assert.equal(json(r).code, 'HESTIA_UNAUTHORIZED');
  assert.equal(up.requests.length, before);
});

test('with the key: forwarded, and the gateway key is stripped while the upstream’s own Authorization passes', async () => {
  const viaHeader = await send(gw.url, '/services/echo/x', {
    headers: { 'X-API-Key': KEY, Authorization: 'Bearer upstream-own-token' },
  });
  assert.equal(viaHeader.status, 200);
  const got = JSON.parse(viaHeader.body) as Received;
  assert.deepEqual(headerValues(got.rawHeaders, 'x-api-key'), []);
  assert.deepEqual(headerValues(got.rawHeaders, 'authorization'), ['Bearer upstream-own-token']);

  const viaBearer = await send(gw.url, '/services/echo/y', { headers: { Authorization: `Bearer ${KEY}` } });
  assert.equal(viaBearer.status, 200);
  assert.deepEqual(headerValues((JSON.parse(viaBearer.body) as Received).rawHeaders, 'authorization'), []);
  assert.doesNotMatch(gw.logText(), new RegExp(KEY));
});

test('WebSocket upgrades need the key too', async () => {
  const denied = new WebSocket(`ws://127.0.0.1:${gw.port}/services/echo/ws`);
  denied.on('error', () => {});
  const [, res] = (await once(denied, 'unexpected-response')) as [unknown, IncomingMessage];
  assert.equal(res.statusCode, 401);
  res.resume();
  denied.terminate();

  const upgraded = once(wss, 'connection') as Promise<[WebSocket, IncomingMessage]>;
  const ok = new WebSocket(`ws://127.0.0.1:${gw.port}/services/echo/ws`, { headers: { 'X-API-Key': KEY } });
  await once(ok, 'open');
  const [, upReq] = await upgraded;
  assert.equal(upReq.headers['x-api-key'], undefined);
  ok.close();
  await once(ok, 'close');
});
