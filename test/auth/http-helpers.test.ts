/**
 * The proxy's auth helpers on a real node:http server (the proxy itself calls them at its hook
 * point): gateProxyRequest strips credentials; rejectUpgrade refuses a real WebSocket client.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import { generateApiKey } from '../../src/auth/api-keys.ts';
import { Authenticator } from '../../src/auth/authenticate.ts';
import { gateProxyRequest, isHttpsRequest, isSameOrigin, rejectUpgrade } from '../../src/auth/request-guards.ts';
import { sendError } from '../../src/errors.ts';
import { EventBus } from '../../src/observability/events.ts';
import { configFrom } from '../helpers/gateway.ts';

const key = generateApiKey();
const config = configFrom({ auth: { enabled: true, api_keys: [{ name: 'k', sha256: key.sha256 }] } });
const auth = new Authenticator({ config: () => config, bus: new EventBus() });
let server: Server;
let url: string;
let seen: IncomingHttpHeaders | undefined;
let upgrades = 0;

before(async () => {
  server = createServer((req, res) => {
    const err = gateProxyRequest(auth, req, 'a');
    if (err) return void sendError(res, err);
    seen = req.headers;
    res.end('forwarded');
  });
  server.on('upgrade', (req, socket) => {
    const err = gateProxyRequest(auth, req, 'a');
    if (err) return rejectUpgrade(socket, err);
    upgrades++;
    socket.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

describe('gateProxyRequest', () => {
  test('strips X-API-Key and keeps a foreign Authorization for the upstream', async () => {
    const res = await fetch(`http://${url}/services/a/x`, {
      headers: { 'x-api-key': key.key, authorization: 'Basic dXNlcjpwYXNz' },
    });
    assert.equal(await res.text(), 'forwarded');
    assert.equal(seen?.['x-api-key'], undefined);
    assert.equal(seen?.authorization, 'Basic dXNlcjpwYXNz');
  });
  test('strips Authorization when it carried the key', async () => {
    await fetch(`http://${url}/services/a/x`, { headers: { authorization: `Bearer ${key.key}` } });
    assert.equal(seen?.authorization, undefined);
  });
  test('401 without a key', async () => {
    const res = await fetch(`http://${url}/services/a/x`);
    assert.equal(res.status, 401);
  });
});

describe('rejectUpgrade', () => {
  test('a WebSocket client without a key gets a 401 and no upgrade', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://${url}/services/a/ws`);
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('open', () => reject(new Error('upgraded without a key')));
      ws.on('error', () => {});
    });
    assert.equal(status, 401);
    assert.equal(upgrades, 0);
  });
});

describe('isSameOrigin / isHttpsRequest', () => {
  test('origin host must equal Host (or the trusted X-Forwarded-Host)', () => {
    assert.equal(isSameOrigin({ origin: 'http://h:8080', host: 'h:8080' }, false), true);
    assert.equal(isSameOrigin({ origin: 'http://H:8080', host: 'h:8080' }, false), true);
    assert.equal(isSameOrigin({ origin: 'http://h:8081', host: 'h:8080' }, false), false);
    assert.equal(isSameOrigin({ origin: 'https://h', host: 'h' }, false), true);
    assert.equal(isSameOrigin({ origin: 'https://pub.example', host: '127.0.0.1:8080' }, false), false);
    const fwd = { origin: 'https://pub.example', host: '127.0.0.1:8080', 'x-forwarded-host': 'pub.example' };
    assert.equal(isSameOrigin(fwd, false), false, 'X-Forwarded-Host ignored unless trusted');
    assert.equal(isSameOrigin(fwd, true), true);
    assert.equal(isSameOrigin({ origin: 'file://x', host: 'x' }, false), false);
    assert.equal(isSameOrigin({ host: 'h', 'sec-fetch-site': 'same-origin' }, false), true);
    assert.equal(isSameOrigin({ host: 'h' }, false), false);
  });
  test('https detection', () => {
    assert.equal(isHttpsRequest({}, {}), false);
    assert.equal(isHttpsRequest({}, { encrypted: true }), true);
    assert.equal(isHttpsRequest({ 'x-forwarded-proto': 'https, http' }, {}), true);
    assert.equal(isHttpsRequest({ 'x-forwarded-proto': 'http' }, {}), false);
  });
});
