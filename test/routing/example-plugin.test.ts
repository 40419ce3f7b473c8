import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../src/observability/logger.ts';
import { loadStrategyPlugins } from '../../src/routing/plugin-loader.ts';
import { StrategyRegistry } from '../../src/routing/strategy-registry.ts';
import type { AnyStrategy } from '../../src/routing/types.ts';
import { cfg, inst, snap, view } from './helpers.ts';

const examples = resolve(dirname(fileURLToPath(import.meta.url)), '../../examples/strategies');

async function loadExample(): Promise<AnyStrategy> {
  const registry = new StrategyRegistry();
  const results = await loadStrategyPlugins(examples, registry, { log: silentLogger(), explicit: true });
  assert.deepEqual(
    results.map((r) => ({ registered: r.registered, problems: r.problems })),
    [{ registered: ['region_router'], problems: [] }],
  );
  const s = registry.get('region_router')?.strategy;
  assert.ok(s);
  return s;
}

const instances = [
  inst('http://east-1', { region: 'us-east' }),
  inst('http://west-1', { region: 'us-west' }),
  inst('http://west-2', { region: 'us-west' }),
];

test('examples/strategies/region-router.mjs loads through the plugin loader', async () => {
  const s = await loadExample();
  assert.equal(s.version, '1.0.0');
  assert.deepEqual([...s.features], ['health_aware', 'region_routing']);
});

test('region_router: the X-Region header picks that region, round robin inside it', async () => {
  const s = await loadExample();
  const state = s.createState?.(cfg());
  const picks = [1, 2, 3].map(() =>
    s.select(view(undefined, { 'x-region': 'us-west' }), snap(instances), cfg(), state),
  );
  assert.deepEqual(
    picks.map((p) => p.url),
    ['http://west-1', 'http://west-2', 'http://west-1'],
  );
  assert.equal(picks[0]?.reason, "region 'us-west'");
});

test('region_router: an unhealthy region falls back to any healthy instance; none healthy → null', async () => {
  const s = await loadExample();
  const state = s.createState?.(cfg());
  const eastDown = [inst('http://east-1', { region: 'us-east', healthy: false }), instances[1]!];
  const d = s.select(view(undefined, { 'x-region': 'us-east' }), snap(eastDown), cfg(), state);
  assert.equal(d.url, 'http://west-1');
  const allDown = instances.map((i) => ({ ...i, healthy: false }));
  assert.equal(s.select(view(), snap(allDown), cfg(), state).url, null);
});

test('region_router: routing.region_header renames the header', async () => {
  const s = await loadExample();
  const c = cfg({ region_header: 'X-Zone' });
  const d = s.select(view(undefined, { 'x-zone': 'us-east' }), snap(instances), c, s.createState?.(c));
  assert.equal(d.url, 'http://east-1');
});

test('an empty plugin directory loads nothing and fails nothing', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'hestia-empty-'));
  try {
    assert.deepEqual(await loadStrategyPlugins(dir, new StrategyRegistry(), { log: silentLogger() }), []);
  } finally {
    await rm(dir, { recursive: true });
  }
});
