/**
 * The dispatcher's shared byte budget (`server.dispatch_buffer_mb`): bodies waiting for a cold
 * service hold budget; a dispatch that would exceed it gets 503 before its body is read; the
 * bytes come back however a request ends (answered, client gone).
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { dispatchBufferInUse } from '../../src/server/dispatch-budget.ts';
import { json, type Sent, send } from '../helpers/client.ts';
import { type ControlledService, type ProxyGateway, startProxyGateway } from '../helpers/service-doubles.ts';
import { echoHandler, startUpstream, type Upstream } from '../helpers/upstream.ts';

let up: Upstream;
let gw: ProxyGateway & { handles: Map<string, unknown> };

before(async () => {
  up = await startUpstream(echoHandler);
  gw = await startProxyGateway({ cold: { base_url: up.url } }, { server: { dispatch_buffer_mb: 1 } });
});

after(async () => {
  await gw.close();
  await up.close();
});

/** A dispatch for the cold service whose JSON body is about `kib` KiB. */
function bodyOf(kib: number): string {
  return JSON.stringify({ serviceId: 'cold', method: 'POST', path: '/up', body: 'x'.repeat(kib * 1024) });
}

function dispatch(body: string): Promise<Sent> {
  return send(gw.url, '/v1/requests', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
}

test('bodies queued for a cold service share the budget: beyond it 503 with Retry-After; all bytes come back', async () => {
  const s = gw.handles.get('cold') as ControlledService;
  const big = bodyOf(400);
  const first = dispatch(big);
  const second = dispatch(big);
  await s.waitQueued(2);
  assert.equal(dispatchBufferInUse(gw.ctx), 2 * Buffer.byteLength(big));

  const refused = await dispatch(big);
  assert.equal(refused.status, 503, refused.body);
  assert.equal(json(refused).code, 'HESTIA_BUFFER_FULL');
  assert.equal(json(refused).src, 'hestia');
  assert.equal(refused.headers['retry-after'], '1');
  assert.equal(s.queued, 2, 'the refused request never queued');

  // A small one still fits.
  const small = dispatch(bodyOf(10));
  await s.waitQueued(3);

  // A client that leaves gives its bytes back too.
  const u = new URL(gw.url);
  const leaving = request({
    host: u.hostname,
    port: u.port,
    path: '/v1/requests',
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json' },
  });
  leaving.on('error', () => {});
  leaving.end(bodyOf(100));
  await s.waitQueued(4);
  leaving.destroy();
  await gw.waitReports(1); // the leaving request ended (499), its bytes given back before
  assert.equal(gw.reports[0]?.status, 499);
  assert.equal(s.queued, 3);
  assert.equal(dispatchBufferInUse(gw.ctx), 2 * Buffer.byteLength(big) + Buffer.byteLength(bodyOf(10)));

  s.makeHot();
  for (const r of await Promise.all([first, second, small])) assert.equal(r.status, 200, r.body);
  assert.equal(dispatchBufferInUse(gw.ctx), 0);
});
