import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let dir: string;
let gw: TestGateway;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hestia-strategies-'));
  await writeFile(
    join(dir, 'pinned.mjs'),
    `export function register() {
      return { name: 'pinned', version: '0.3.0', features: ['custom'],
        select: (v, s) => ({ url: s.instances[0]?.url ?? s.baseUrl, reason: 'pinned' }) };
    }`,
  );
  await writeFile(join(dir, 'broken.mjs'), `throw new Error('broken on purpose');`);
  gw = await startTestGateway(
    `
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
  api:
    base_url: "http://localhost:9000"
    strategy: pinned
    instances: [{ url: "http://api-1:9000", weight: 3 }, { url: "http://bob:s3cret@api-2:9000" }]
  plain:
    base_url: "http://localhost:9100"
`,
    { env: { HESTIA_STRATEGIES_DIR: dir } },
  );
});
after(async () => {
  await gw?.close();
  await rm(dir, { recursive: true, force: true });
});

test('a broken plugin in HESTIA_STRATEGIES_DIR is logged and skipped; the gateway starts', async () => {
  const res = await fetch(`${gw.url}/healthz`);
  assert.equal(res.status, 200);
  const skipped = gw.logs().find((l) => l.event_type === 'strategy_plugin_skipped');
  assert.equal(skipped?.file, join(dir, 'broken.mjs'));
  assert.match(String(skipped?.problem), /broken on purpose/);
});

test('GET /v1/strategies lists built-ins and plugins, and every service configuration', async () => {
  const res = await fetch(`${gw.url}/v1/strategies`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as {
    loaded_strategies: Record<string, { name: string; version: string; features: string[]; source: string }>;
    service_configurations: Record<string, { strategy: string | null; instances: unknown[]; routing: unknown }>;
  };
  assert.deepEqual(Object.keys(body.loaded_strategies).sort(), ['load_balancer', 'model_router', 'pinned']);
  assert.deepEqual(body.loaded_strategies.pinned, {
    name: 'pinned',
    version: '0.3.0',
    features: ['custom'],
    source: join(dir, 'pinned.mjs'),
  });
  assert.ok(body.loaded_strategies.model_router?.features.includes('json_body'));
  assert.equal(body.loaded_strategies.model_router?.source, 'builtin');

  const ollama = body.service_configurations.ollama;
  assert.equal(ollama?.strategy, 'model_router');
  assert.deepEqual(ollama?.instances, [
    { url: 'http://ollama-a:11434', weight: 1, region: 'us-east', healthy: true, cooldown_remaining_ms: 0 },
    { url: 'http://ollama-b:11434', weight: 1, region: 'us-west', healthy: true, cooldown_remaining_ms: 0 },
  ]);
  assert.deepEqual(ollama?.routing, {
    model_key: 'model',
    by_model: { llama3: 'http://ollama-a:11434', mistral: 'http://ollama-b:11434' },
    body_cap_bytes: 1048576,
    cooldown_ms: 30000,
  });
  assert.equal(body.service_configurations.api?.strategy, 'pinned');
  const api = body.service_configurations.api;
  assert.equal(
    (api?.instances[1] as { url: string } | undefined)?.url,
    'http://bob:***@api-2:9000',
    'as configured, password masked',
  );
  assert.doesNotMatch(JSON.stringify(body), /s3cret/);
  assert.deepEqual(body.service_configurations.plain, { strategy: null, instances: [], routing: null });
});
