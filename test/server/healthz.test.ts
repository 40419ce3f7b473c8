import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let gw: TestGateway;
before(async () => {
  gw = await startTestGateway({ services: {} });
});
after(() => gw.close());

test('GET /healthz answers 200 {"status":"ok"}', async () => {
  const res = await fetch(`${gw.url}/healthz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok' });
});

test('an unknown control-plane route is a 404 in the Hestia error envelope', async () => {
  const res = await fetch(`${gw.url}/v1/nope`);
  assert.equal(res.status, 404);
  const body = (await res.json()) as Record<string, unknown>;
  assert.equal(body.code, 'HESTIA_NOT_FOUND');
  assert.equal(body.src, 'hestia');
});
