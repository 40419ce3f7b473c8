import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Config } from '../../src/config/schema.ts';
import { HestiaError } from '../../src/errors.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { routeRequest } from '../../src/routing/route-request.ts';
import { RoutingTable } from '../../src/routing/router.ts';
import { configFrom } from '../helpers/gateway.ts';

function table(config: Config, now: () => number = () => 1_000) {
  return new RoutingTable({ getConfig: () => config, log: silentLogger(), clock: now });
}

/** A body stream that fails the test if anyone reads it. */
function untouchable(): AsyncIterable<unknown> {
  return {
    [Symbol.asyncIterator]() {
      throw new Error('the body must not be read');
    },
  };
}

test('a service without a strategy gets null and its body is not touched', async () => {
  const t = table(configFrom({ services: { plain: { base_url: 'http://p:1' } } }));
  const r = await routeRequest(t, 'plain', 'http://p:1', {
    method: 'POST',
    path: '/x',
    headers: { 'content-length': '5' },
    body: untouchable(),
  });
  assert.equal(r, null);
});

test('load_balancer does not read the body either', async () => {
  const t = table(
    configFrom({
      services: { lb: { base_url: 'http://b:1', strategy: 'load_balancer', instances: [{ url: 'http://a:1' }] } },
    }),
  );
  const r = await routeRequest(t, 'lb', 'http://b:1', {
    method: 'post',
    path: '/x',
    headers: { 'content-length': '5' },
    body: untouchable(),
  });
  assert.equal(r?.url, 'http://a:1');
  assert.equal(r?.body, undefined);
});

test('model_router on a request without a body decides on {status: empty} without reading', async () => {
  const t = table(configFrom({ services: { m: { base_url: 'http://b:1', strategy: 'model_router' } } }));
  const r = await routeRequest(t, 'm', 'http://b:1', {
    method: 'GET',
    path: '/api/tags',
    headers: {},
    body: untouchable(),
  });
  assert.equal(r?.url, 'http://b:1');
  assert.match(r?.decision.reason ?? '', /body empty/);
});

test('connectFailed + next: the failed instance cools down and the retry goes elsewhere; none left → 502', async () => {
  const t = table(
    configFrom({
      services: {
        lb: {
          base_url: 'http://b:1',
          strategy: 'load_balancer',
          instances: [{ url: 'http://a:1' }, { url: 'http://c:1' }],
        },
      },
    }),
  );
  const r = (await routeRequest(t, 'lb', 'http://b:1', {
    method: 'GET',
    path: '/',
    headers: {},
    body: untouchable(),
  }))!;
  assert.equal(r.url, 'http://a:1');
  r.connectFailed(new Error('ECONNREFUSED'));
  assert.equal(r.next(), 'http://c:1');
  assert.equal(r.url, 'http://c:1');
  r.connectFailed();
  assert.throws(
    () => r.next(),
    (e: unknown) => e instanceof HestiaError && e.code === 'HESTIA_NO_HEALTHY_INSTANCE',
  );
});
