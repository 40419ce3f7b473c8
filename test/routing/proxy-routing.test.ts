/**
 * Routing strategies on real traffic: a real gateway (startTestGateway) in front of real
 * upstreams on 127.0.0.1, requests through `/services/{id}/…`. Time for cooldowns comes from an
 * injected clock, so "after the cooldown" is a clock step, not a wait.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { json, send } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { refusedPort } from '../helpers/net.ts';
import { echoHandler, headerValues, type Received, startUpstream, type Upstream } from '../helpers/upstream.ts';

let gw: TestGateway;
let now = 1_700_000_000_000;
let dir: string;
const ups: Record<string, Upstream> = {};
let deadPort: number;
let deadA: number;
let deadB: number;
let deadModel: number;
let revived: Server | null = null;

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** How many requests upstream `name` received whose path starts with `prefix`. */
function count(name: string, prefix: string): number {
  return ups[name]!.requests.filter((r) => r.url.startsWith(prefix)).length;
}

function requestLines(): Array<Record<string, unknown>> {
  return gw.logs().filter((l) => l.event_type === 'request');
}

before(async () => {
  for (const name of ['a', 'b', 'c', 'base', 'alive', 'fb', 'one', 'two']) ups[name] = await startUpstream(echoHandler);
  [deadPort, deadA, deadB, deadModel] = [
    await refusedPort(),
    await refusedPort(),
    await refusedPort(),
    await refusedPort(),
  ];
  dir = await mkdtemp(join(tmpdir(), 'hestia-route-plugin-'));
  // A plugin: the instance whose region the X-Pick header names, else base_url.
  await writeFile(
    join(dir, 'pick.mjs'),
    `export function register() {
      return { name: 'pick_header', version: '1.0.0', features: ['custom'],
        select(view, snapshot) {
          const want = view.headers['x-pick'];
          const hit = snapshot.instances.find((i) => i.region === want);
          return hit ? { url: hit.url, reason: 'x-pick → ' + want } : { url: snapshot.baseUrl, reason: 'no x-pick: base_url' };
        } };
    }`,
  );
  const u = (n: string) => ups[n]!.url;
  const dead = (p: number) => `http://127.0.0.1:${p}`;
  gw = await startTestGateway(
    {
      strategies_dir: dir,
      services: {
        lb: {
          base_url: u('base'),
          strategy: 'load_balancer',
          instances: [
            { url: u('a'), weight: 2 },
            { url: u('b'), weight: 1 },
            { url: u('c'), weight: 1 },
          ],
        },
        failover: {
          base_url: u('base'),
          strategy: 'load_balancer',
          instances: [{ url: dead(deadPort) }, { url: u('alive') }],
          routing: { cooldown_ms: 30_000 },
        },
        alldead: {
          base_url: u('base'),
          strategy: 'load_balancer',
          instances: [{ url: dead(deadA) }, { url: dead(deadB) }],
          routing: { cooldown_ms: 30_000 },
        },
        models: {
          base_url: u('base'),
          strategy: 'model_router',
          routing: { by_model: { llama3: u('a'), mistral: u('b') }, body_cap_bytes: 4096 },
        },
        modelfb: {
          base_url: u('base'),
          fallback_url: u('fb'),
          strategy: 'model_router',
          routing: { by_model: { llama3: dead(deadModel) } },
        },
        plugged: {
          base_url: u('base'),
          strategy: 'pick_header',
          instances: [
            { url: u('one'), region: 'one' },
            { url: u('two'), region: 'two' },
          ],
        },
      },
    },
    { clock: () => now },
  );
});

after(async () => {
  await gw.close();
  for (const up of Object.values(ups)) await up.close();
  if (revived !== null) {
    revived.closeAllConnections();
    await new Promise((r) => revived!.close(r));
  }
  await rm(dir, { recursive: true, force: true });
});

describe('load_balancer through /services', () => {
  test('requests spread by weight: 2:1:1 over 8 requests is exactly 4, 2, 2; base_url gets none', async () => {
    for (let i = 0; i < 8; i++) {
      const r = await send(gw.url, `/services/lb/w/${i}`);
      assert.equal(r.status, 200);
    }
    assert.deepEqual(
      ['a', 'b', 'c', 'base'].map((n) => count(n, '/w/')),
      [4, 2, 2, 0],
    );
    // The strategy's reason is logged with the request, never sent as a header.
    const line = requestLines().find((l) => l.service_id === 'lb');
    assert.equal(line?.route_reason, 'weighted round robin');
  });

  test('a dead instance is skipped (the request that found it fails over), then reused after its cooldown', async () => {
    const first = await send(gw.url, '/services/failover/f/1');
    assert.equal(first.status, 200, 'the request that hit the dead instance still succeeds on the other one');
    assert.equal((json(first) as unknown as Received).url, '/f/1');
    for (let i = 2; i <= 4; i++) assert.equal((await send(gw.url, `/services/failover/f/${i}`)).status, 200);
    assert.equal(count('alive', '/f/'), 4, 'all four answered by the live instance');
    assert.ok(
      gw.logs().some((l) => l.event_type === 'instance_unhealthy' && l.instance === `http://127.0.0.1:${deadPort}`),
    );
    const view = json(await send(gw.url, '/v1/strategies')) as {
      service_configurations: Record<string, { instances: Array<{ healthy: boolean; cooldown_remaining_ms: number }> }>;
    };
    assert.deepEqual(
      view.service_configurations.failover!.instances.map((i) => [i.healthy, i.cooldown_remaining_ms]),
      [
        [false, 30_000],
        [true, 0],
      ],
    );

    // The instance comes back on its port; once the cooldown has passed, real traffic finds it.
    let revivedHits = 0;
    revived = createServer((req, res) => {
      revivedHits++;
      echoHandler(req, res);
    });
    revived.listen(deadPort, '127.0.0.1');
    await once(revived, 'listening');
    now += 30_000;
    for (let i = 5; i <= 8; i++) assert.equal((await send(gw.url, `/services/failover/f/${i}`)).status, 200);
    assert.equal(revivedHits, 2, 'equal weights: the revived instance gets its half again');
    assert.equal(count('alive', '/f/'), 6);
  });

  test('every instance dead → 502 HESTIA_NO_HEALTHY_INSTANCE with Retry-After, then at once while cooling', async () => {
    const r1 = await send(gw.url, '/services/alldead/x');
    assert.equal(r1.status, 502);
    assert.equal(json(r1).code, 'HESTIA_NO_HEALTHY_INSTANCE');
    assert.equal(r1.headers['retry-after'], '30');
    const r2 = await send(gw.url, '/services/alldead/y');
    assert.equal(r2.status, 502);
    const body = json(r2);
    assert.equal(body.code, 'HESTIA_NO_HEALTHY_INSTANCE');
    assert.deepEqual(
      (body.instances as Array<{ cooldown_remaining_ms: number }>).map((i) => i.cooldown_remaining_ms),
      [30_000, 30_000],
    );
    assert.equal(count('base', '/x') + count('base', '/y'), 0, 'no silent fallback to base_url');
    for (const r of [r1, r2]) for (const v of r.rawHeaders) assert.ok(!v.includes('→'), `header value ${v}`);
  });
});

describe('model_router through /services: routed by the body, body intact', () => {
  async function post(path: string, body: Buffer | Readable, headers: Record<string, string> = {}) {
    const r = await send(gw.url, path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    assert.equal(r.status, 200, r.body);
    return { r, got: json(r) as unknown as Received };
  }

  test('the model picks the upstream, which receives the same bytes (SHA-256) and Content-Length', async () => {
    const body = Buffer.from('{ "model" : "mistral",\n  "prompt": "h\\u00e9llo",  "n": 1.50 }');
    const { r, got } = await post('/services/models/api/generate', body);
    assert.equal(got.url, '/api/generate');
    assert.equal(count('b', '/api/generate'), 1);
    assert.equal(got.bodySha256, sha(body));
    assert.deepEqual(headerValues(got.rawHeaders, 'content-length'), [String(body.length)]);
    for (const v of r.rawHeaders) assert.ok(!v.includes('→'), 'route reason never in a header');
    const line = requestLines().find((l) => l.service_id === 'models');
    assert.equal(line?.route_reason, "model 'mistral' → by_model");
    assert.equal(line?.bytes_in, body.length);
  });

  test('an Ollama name:tag and a chunked body (no Content-Length) route too', async () => {
    const text = '{"model":"llama3:8b","stream":false}';
    const { got } = await post(
      '/services/models/api/chat',
      Readable.from([Buffer.from(text.slice(0, 9)), Buffer.from(text.slice(9))]),
    );
    assert.equal(count('a', '/api/chat'), 1);
    assert.equal(got.bodySha256, sha(text));
    assert.equal(got.bodyLength, text.length);
  });

  test('a body over routing.body_cap_bytes streams through to base_url intact', async () => {
    const body = Buffer.from(JSON.stringify({ model: 'llama3', pad: 'x'.repeat(200_000) }));
    const { got } = await post('/services/models/api/big', body);
    assert.equal(count('base', '/api/big'), 1);
    assert.equal(count('a', '/api/big'), 0);
    assert.equal(got.bodySha256, sha(body));
    assert.deepEqual(headerValues(got.rawHeaders, 'content-length'), [String(body.length)]);
  });

  test('a body read for routing is replayed to fallback_url when the routed upstream is down', async () => {
    const body = Buffer.from('{"model":"llama3","prompt":"again"}');
    const { got } = await post('/services/modelfb/api/generate', body);
    assert.equal(count('fb', '/api/generate'), 1);
    assert.equal(got.bodySha256, sha(body));
    assert.deepEqual(headerValues(got.rawHeaders, 'content-length'), [String(body.length)]);
  });
});

describe('a plugin from the strategies directory', () => {
  test('routes real traffic by its own rule', async () => {
    const r = await send(gw.url, '/services/plugged/p', { headers: { 'X-Pick': 'two' } });
    assert.equal(r.status, 200);
    assert.equal(count('two', '/p'), 1);
    assert.equal(count('one', '/p'), 0);
    const r2 = await send(gw.url, '/services/plugged/q');
    assert.equal(r2.status, 200);
    assert.equal(count('base', '/q'), 1);
    const line = requestLines().find((l) => l.service_id === 'plugged');
    assert.equal(line?.route_reason, 'x-pick → two');
  });
});
