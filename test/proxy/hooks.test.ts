import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { after, before, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { HestiaError } from '../../src/errors.ts';
import type { ServiceHandle } from '../../src/services/types.ts';
import { json, send } from '../helpers/client.ts';
import { type ControlledService, type ProxyGateway, startProxyGateway } from '../helpers/service-doubles.ts';
import { echoHandler, headerValues, type Received, startUpstream, type Upstream } from '../helpers/upstream.ts';

let up: Upstream;
let wss: WebSocketServer;
let gw: ProxyGateway & { handles: Map<string, ServiceHandle> };

before(async () => {
  up = await startUpstream(echoHandler);
  wss = new WebSocketServer({ server: up.server });
  // The auth seam a colleague fills in: here, `locked` needs X-Key: k, and `buggy` throws.
  gw = await startProxyGateway(
    { open: { base_url: up.url }, locked: { base_url: up.url }, buggy: { base_url: up.url } },
    {
      hooks: {
        // Shaped like main's gateProxyRequest: refuse, or allow after stripping the gateway's
        // own credentials from req.headers; undefined = auth not applied.
        authorize(req, serviceId) {
          if (serviceId === 'buggy') throw new Error('bug in a hook');
          if (serviceId !== 'locked') return undefined;
          if (req.headers['x-api-key'] !== 'k')
            return new HestiaError('HESTIA_UNAUTHORIZED', 'a valid key is required');
          delete req.headers['x-api-key'];
          const cookie = req.headers.cookie?.replace(/(^|;\s*)hestia_session=[^;]*(;\s*)?/, '$1');
          if (cookie) req.headers.cookie = cookie;
          else delete req.headers.cookie;
          return null;
        },
      },
    },
  );
  for (const h of gw.handles.values()) (h as ControlledService).state = 'hot';
});

after(async () => {
  await gw.close();
  wss.close();
  await up.close();
});

test('the authorize hook can refuse HTTP requests before anything is acquired', async () => {
  const denied = await send(gw.url, '/services/locked/x');
  assert.equal(denied.status, 401);
  assert.equal(json(denied).code, 'HESTIA_UNAUTHORIZED');
  assert.equal((gw.handles.get('locked') as ControlledService).leasesGranted, 0);
  const ok = await send(gw.url, '/services/locked/x', {
    headers: { 'X-API-Key': 'k', Cookie: 'hestia_session=s1; app=1', Authorization: 'Bearer for-the-upstream' },
  });
  const got = JSON.parse(ok.body) as Received;
  assert.equal(got.url, '/x');
  // The gateway's credentials stop here; the upstream's own pass.
  assert.deepEqual(headerValues(got.rawHeaders, 'x-api-key'), []);
  assert.deepEqual(headerValues(got.rawHeaders, 'cookie'), ['app=1']);
  assert.deepEqual(headerValues(got.rawHeaders, 'authorization'), ['Bearer for-the-upstream']);
});

test('a hook that does not apply (undefined) forwards every header as sent', async () => {
  const r = await send(gw.url, '/services/open/x', { headers: { 'X-API-Key': 'not-ours', Cookie: 'a=1' } });
  const got = JSON.parse(r.body) as Received;
  assert.deepEqual(headerValues(got.rawHeaders, 'x-api-key'), ['not-ours']);
  assert.deepEqual(headerValues(got.rawHeaders, 'cookie'), ['a=1']);
});

test('the authorize hook also guards WebSocket upgrades', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${gw.port}/services/locked/socket`);
  ws.on('error', () => {});
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
  assert.equal(res.statusCode, 401);
  res.resume();
  ws.terminate();
  const allowed = new WebSocket(`ws://127.0.0.1:${gw.port}/services/locked/socket`, { headers: { 'X-API-Key': 'k' } });
  await once(allowed, 'open');
  allowed.close();
  await once(allowed, 'close');
});

test('a hook that throws costs one 500, not the process', async () => {
  const r = await send(gw.url, '/services/buggy/x');
  assert.equal(r.status, 500);
  assert.equal(json(r).code, 'HESTIA_INTERNAL');
  assert.equal((await send(gw.url, '/services/open/x')).status, 200);
});
