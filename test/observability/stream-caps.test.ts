/**
 * Event-stream caps per owner as well as in total: one API key holder (or, with auth off, one
 * address) cannot take every stream slot and lock out the dashboard or other clients.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type IncomingMessage, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, test } from 'node:test';
import { generateApiKey } from '../../src/auth/api-keys.ts';
import { EventHub, MAX_CLIENTS_PER_OWNER } from '../../src/observability/event-stream.ts';
import { startTestGateway } from '../helpers/gateway.ts';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Opened {
  status: number;
  body: string;
}

/** GET a stream; 200 → kept open (closed after the test), else the error body is read. */
function openStream(url: string, headers: Record<string, string> = {}, localAddress?: string): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { headers: { accept: 'text/event-stream', ...headers }, agent: false, ...(localAddress ? { localAddress } : {}) },
      (res: IncomingMessage) => {
        if (res.statusCode === 200) {
          cleanups.push(() => req.destroy());
          resolve({ status: 200, body: '' });
          return;
        }
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('with auth on, one API key gets at most MAX_CLIENTS_PER_OWNER streams; another key still gets one', async () => {
  const a = generateApiKey();
  const b = generateApiKey();
  const gw = await startTestGateway({
    services: {},
    auth: {
      enabled: true,
      api_keys: [
        { name: 'a', sha256: a.sha256 },
        { name: 'b', sha256: b.sha256 },
      ],
    },
  });
  cleanups.push(() => gw.close());
  const url = `${gw.url}/v1/events/stream`;
  for (let i = 0; i < MAX_CLIENTS_PER_OWNER; i++)
    assert.equal((await openStream(url, { 'x-api-key': a.key })).status, 200, `stream ${i + 1}`);
  const refused = await openStream(url, { 'x-api-key': a.key });
  assert.equal(refused.status, 429);
  const body = JSON.parse(refused.body) as { code: string; error: string; src: string; limit: number };
  assert.equal(body.code, 'HESTIA_TOO_MANY_REQUESTS');
  assert.equal(body.src, 'hestia');
  assert.equal(body.limit, MAX_CLIENTS_PER_OWNER);
  assert.match(body.error, /for this API key/);
  assert.equal((await openStream(url, { 'x-api-key': b.key })).status, 200, 'the other key is not locked out');
});

test('with auth off, the cap is per client address: 127.0.0.2 still gets a stream when 127.0.0.1 is at its cap', async () => {
  const gw = await startTestGateway({ services: {} });
  cleanups.push(() => gw.close());
  const url = `${gw.url}/v1/events/stream`;
  for (let i = 0; i < MAX_CLIENTS_PER_OWNER; i++)
    assert.equal((await openStream(url, {}, '127.0.0.1')).status, 200, `stream ${i + 1}`);
  const refused = await openStream(url, {}, '127.0.0.1');
  assert.equal(refused.status, 429);
  assert.match(refused.body, /for this address/);
  assert.equal((await openStream(url, {}, '127.0.0.2')).status, 200);
});

test('EventHub: the total cap still holds, and a closed stream frees its owner slot', async () => {
  const hub = new EventHub({ maxClients: 2, maxPerOwner: 1 });
  const server = createServer((req, res) => {
    const owner = new URL(req.url ?? '/', 'http://x').searchParams.get('owner') ?? '';
    const room = hub.checkRoom(owner);
    if (!room.ok) {
      res.writeHead(429, { 'content-type': 'text/plain' }).end(room.reason);
      return;
    }
    hub.open(req, res, {}, [], owner);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    hub.close();
    server.close();
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/?owner=`;
  assert.equal((await openStream(`${base}a`)).status, 200);
  assert.deepEqual(await openStream(`${base}a`), { status: 429, body: 'owner' });
  assert.equal((await openStream(`${base}b`)).status, 200);
  assert.deepEqual(await openStream(`${base}c`), { status: 429, body: 'total' });
  assert.equal(hub.sizeOf('a'), 1);
  hub.close();
  assert.equal(hub.sizeOf('a'), 0);
  assert.equal(hub.size, 0);
});
