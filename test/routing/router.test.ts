import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { Config } from '../../src/config/schema.ts';
import { HestiaError } from '../../src/errors.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { InstanceHealth } from '../../src/routing/instance-health.ts';
import { RoutingTable, ServiceRouter } from '../../src/routing/router.ts';
import { StrategyRegistry } from '../../src/routing/strategy-registry.ts';
import type { AnyStrategy, Strategy } from '../../src/routing/types.ts';
import { configFrom } from '../helpers/gateway.ts';
import { view } from './helpers.ts';

function capturingLog() {
  const lines: Array<Record<string, unknown>> = [];
  const log = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk, _e, cb) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    }),
  });
  return { log, lines };
}

function clock(start = 1_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

function routerWith(strategy: AnyStrategy, serviceYaml: Record<string, unknown> = {}, c = clock()) {
  const config = configFrom({
    services: { svc: { base_url: 'http://base:1', strategy: strategy.name, ...serviceYaml } },
  });
  const { log, lines } = capturingLog();
  const svc = config.services.svc!;
  const router = new ServiceRouter('svc', svc, { strategy, source: 'test' }, new InstanceHealth(c.now), log);
  return { router, lines, clock: c };
}

const fixed = (url: unknown, name = 'fixed'): AnyStrategy => ({
  name,
  version: '1',
  features: [],
  select: () => url as { url: string; reason: string },
});

test('a strategy that throws sends the request to base_url and logs strategy_error', () => {
  const { router, lines } = routerWith({
    name: 'boom',
    version: '1',
    features: [],
    select() {
      throw new Error('kaput');
    },
  });
  const d = router.decide(view(), 'http://resolved-base:1');
  assert.equal(d.url, 'http://resolved-base:1');
  assert.equal(d.strategyFailed, true);
  assert.match(d.reason, /select threw: kaput/);
  const errs = lines.filter((l) => l.event_type === 'strategy_error');
  assert.equal(errs.length, 1);
  assert.equal(errs[0]?.service_id, 'svc');
});

for (const [what, out, pattern] of [
  ['a string', 'http://a:1', /expected \{url, reason\}/],
  ['undefined', undefined, /expected \{url, reason\}/],
  ['a Promise', Promise.resolve({ url: 'http://a:1', reason: 'x' }), /Promise/],
  ['a non-http URL', { url: 'ftp://a/', reason: 'x' }, /not an http\(s\) URL/],
  ['a relative URL', { url: '/elsewhere', reason: 'x' }, /not an http\(s\) URL/],
  ['a numeric url', { url: 42, reason: 'x' }, /expected a URL string or null/],
] as Array<[string, unknown, RegExp]>) {
  test(`a strategy returning ${what} falls back to base_url`, () => {
    const { router } = routerWith(fixed(out));
    const d = router.decide(view(), 'http://base:1');
    assert.equal(d.url, 'http://base:1');
    assert.equal(d.strategyFailed, true);
    assert.match(d.reason, pattern);
  });
}

test('strategy_error lines are throttled to one per 10 s per service, counting the suppressed ones', () => {
  const { router, lines, clock: c } = routerWith(fixed('garbage'));
  for (let i = 0; i < 5; i++) router.decide(view(), 'http://base:1');
  assert.equal(lines.filter((l) => l.event_type === 'strategy_error').length, 1);
  c.advance(10_000);
  router.decide(view(), 'http://base:1');
  const errs = lines.filter((l) => l.event_type === 'strategy_error');
  assert.equal(errs.length, 2);
  assert.equal(errs[1]?.suppressed, 4);
});

test('url null becomes 502 HESTIA_NO_HEALTHY_INSTANCE with remaining cooldowns and Retry-After', () => {
  const { router } = routerWith(
    (() => {
      const lb: Strategy = {
        name: 'none_left',
        version: '1',
        features: [],
        select: () => ({ url: null, reason: 'nothing healthy' }),
      };
      return lb as AnyStrategy;
    })(),
    { instances: [{ url: 'http://a:1' }, { url: 'http://b:2' }], routing: { cooldown_ms: 2500 } },
  );
  router.reportConnectFailure('http://a:1');
  assert.throws(
    () => router.decide(view(), 'http://base:1'),
    (err: unknown) => {
      assert.ok(err instanceof HestiaError);
      assert.equal(err.code, 'HESTIA_NO_HEALTHY_INSTANCE');
      assert.equal(err.status, 502);
      assert.match(err.message, /nothing healthy/);
      assert.deepEqual(err.details.instances, [
        { url: 'http://a:1', cooldown_remaining_ms: 2500 },
        { url: 'http://b:2', cooldown_remaining_ms: 0 },
      ]);
      assert.equal(err.headers['retry-after'], '3');
      return true;
    },
  );
});

test('the load balancer behind a router skips an instance reported down, and uses it again after the cooldown', () => {
  const registry = new StrategyRegistry();
  const c = clock();
  const config = configFrom({
    services: {
      svc: {
        base_url: 'http://base:1',
        strategy: 'load_balancer',
        instances: [{ url: 'http://a:1' }, { url: 'http://b:2' }],
        routing: { cooldown_ms: 1000 },
      },
    },
  });
  const table = new RoutingTable({ getConfig: () => config, log: capturingLog().log, clock: c.now }, registry);
  const router = table.routerFor('svc')!;
  router.reportConnectFailure('http://a:1');
  const during = [1, 2, 3].map(() => router.decide(view(), 'http://base:1').url);
  assert.deepEqual(during, ['http://b:2', 'http://b:2', 'http://b:2']);
  c.advance(1000);
  const after = [1, 2].map(() => router.decide(view(), 'http://base:1').url).sort();
  assert.deepEqual(after, ['http://a:1', 'http://b:2']);
});

test('createState runs once per service and config generation; its state reaches select', () => {
  let created = 0;
  const counting: Strategy<{ n: number }> = {
    name: 'counting',
    version: '1',
    features: [],
    createState: () => {
      created++;
      return { n: 0 };
    },
    select: (_v, s, _c, state) => ({ url: s.baseUrl, reason: `call ${++state.n}` }),
  };
  const registry = new StrategyRegistry();
  assert.equal(registry.add(counting, 'test'), null);
  let config: Config = configFrom({ services: { svc: { base_url: 'http://base:1', strategy: 'counting' } } });
  const table = new RoutingTable({ getConfig: () => config, log: capturingLog().log }, registry);
  assert.equal(table.routerFor('svc')!.decide(view(), 'http://base:1').reason, 'call 1');
  assert.equal(table.routerFor('svc')!.decide(view(), 'http://base:1').reason, 'call 2');
  assert.equal(created, 1);
  config = configFrom({ services: { svc: { base_url: 'http://base:1', strategy: 'counting' } } });
  assert.equal(table.routerFor('svc')!.decide(view(), 'http://base:1').reason, 'call 1');
  assert.equal(created, 2);
});

test('no strategy, or a strategy that is not loaded → no router (base_url), with a warning for the latter', () => {
  const { log, lines } = capturingLog();
  const config = configFrom({
    services: {
      plain: { base_url: 'http://p:1' },
      typo: { base_url: 'http://t:1', strategy: 'load_balancr' },
      lonely: { base_url: 'http://l:1', instances: [{ url: 'http://x:1' }] },
    },
  });
  const table = new RoutingTable({ getConfig: () => config, log });
  assert.equal(table.routerFor('plain'), null);
  assert.equal(table.routerFor('typo'), null);
  assert.equal(table.routerFor('lonely'), null);
  const warnings = lines.filter((l) => l.event_type === 'strategy_config').map((l) => String(l.msg));
  assert.equal(warnings.length, 2);
  assert.match(warnings.find((w) => w.includes('typo')) ?? '', /'load_balancr', which is not loaded/);
  assert.match(warnings.find((w) => w.includes('lonely')) ?? '', /instances but no strategy/);
});

test('needsBody follows the json_body feature; the body cap comes from routing.body_cap_bytes (default 1 MiB)', () => {
  const config = configFrom({
    services: {
      m: { base_url: 'http://m:1', strategy: 'model_router' },
      capped: { base_url: 'http://c:1', strategy: 'model_router', routing: { body_cap_bytes: 10 } },
      lb: { base_url: 'http://l:1', strategy: 'load_balancer' },
    },
  });
  const table = new RoutingTable({ getConfig: () => config, log: capturingLog().log });
  assert.equal(table.routerFor('m')!.needsBody, true);
  assert.equal(table.routerFor('m')!.bodyCapBytes, 1024 * 1024);
  assert.equal(table.routerFor('capped')!.bodyCapBytes, 10);
  assert.equal(table.routerFor('lb')!.needsBody, false);
});

test("the original's model_router config shape routes as it did", () => {
  const config = configFrom(`
services:
  ollama:
    base_url: "http://localhost:11434"
    strategy: "model_router"
    instances:
      - { url: "http://ollama-a:11434", region: "us-east" }
      - { url: "http://ollama-b:11434", region: "us-west" }
    routing:
      model_key: "model"
      by_model:
        llama3: "http://ollama-a:11434"
        mistral: "http://ollama-b:11434"
`);
  const table = new RoutingTable({ getConfig: () => config, log: capturingLog().log });
  const r = table.routerFor('ollama')!;
  const d = r.decide(view({ status: 'json', value: { model: 'mistral' } }), 'http://localhost:11434');
  assert.equal(d.url, 'http://ollama-b:11434');
  assert.equal(r.decide(view({ status: 'not_json' }), 'http://localhost:11434').url, 'http://localhost:11434');
});
