import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateApiKey } from '../../src/auth/api-keys.ts';
import { resolveConfig } from '../../src/config/resolve.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const services = {
  qwen: { base_url: 'http://127.0.0.1:9', models: ['qwen2.5:7b', 'qwen'] },
  embed: { base_url: 'http://127.0.0.1:9', models: ['org/nomic-embed'] },
  plain: { base_url: 'http://127.0.0.1:9' },
};

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

describe('model lists, auth off', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({ services });
  });
  after(() => gw.close());

  test('GET /v1/models lists every model of every service in OpenAI shape, with the service and its state', async () => {
    const res = await fetch(`${gw.url}/v1/models`);
    assert.equal(res.status, 200);
    const body = await json(res);
    assert.equal(body.object, 'list');
    const data = body.data as Array<Record<string, unknown>>;
    assert.deepEqual(
      data.map((m) => [m.id, m.object, m.owned_by]),
      [
        ['qwen2.5:7b', 'model', 'qwen'],
        ['qwen', 'model', 'qwen'],
        ['org/nomic-embed', 'model', 'embed'],
      ],
    );
    assert.deepEqual(data[0]?.hestia, { service: 'qwen', state: 'cold' });
    assert.equal(typeof data[0]?.created, 'number');
  });

  test('the dashboard shows each service’s models under its name', async () => {
    const html = await (await fetch(`${gw.url}/ui`)).text();
    const name = (id: string) => `<th scope="row"><a href="/services/${id}/" title="Open ${id}">${id}</a>`;
    const noPolicy = '<span class="policy" data-field="policy"></span></th>';
    assert.ok(
      html.includes(`${name('qwen')}<span class="models" data-field="models">qwen2.5:7b, qwen</span>${noPolicy}`),
    );
    assert.ok(
      html.includes(`${name('embed')}<span class="models" data-field="models">org/nomic-embed</span>${noPolicy}`),
    );
    assert.ok(html.includes(`${name('plain')}${noPolicy}`));
  });

  test('GET /v1/models/{model} returns one model, names with / and : included', async () => {
    const one = await json(await fetch(`${gw.url}/v1/models/org/nomic-embed`));
    assert.equal(one.id, 'org/nomic-embed');
    assert.equal(one.owned_by, 'embed');
    const two = await json(await fetch(`${gw.url}/v1/models/qwen2.5:7b`));
    assert.equal(two.owned_by, 'qwen');
  });

  test('an unknown model is a 404 in OpenAI error shape plus Hestia fields, listing the models', async () => {
    const res = await fetch(`${gw.url}/v1/models/llama9`);
    assert.equal(res.status, 404);
    const body = await json(res);
    const error = body.error as Record<string, unknown>;
    assert.equal(error.code, 'model_not_found');
    assert.equal(error.type, 'not_found_error');
    assert.match(String(error.message), /llama9/);
    assert.equal(body.code, 'HESTIA_UNKNOWN_MODEL');
    assert.equal(body.src, 'hestia');
    assert.deepEqual(body.models, ['qwen2.5:7b', 'qwen', 'org/nomic-embed']);
  });

  test('GET /api/tags lists the same models in Ollama shape', async () => {
    const body = await json(await fetch(`${gw.url}/api/tags`));
    const models = body.models as Array<Record<string, unknown>>;
    assert.deepEqual(
      models.map((m) => [m.name, m.model]),
      [
        ['qwen2.5:7b', 'qwen2.5:7b'],
        ['qwen', 'qwen'],
        ['org/nomic-embed', 'org/nomic-embed'],
      ],
    );
    assert.ok(!Number.isNaN(Date.parse(String(models[0]?.modified_at))));
    assert.deepEqual(models[2]?.hestia, { service: 'embed', state: 'cold' });
  });
});

describe('model lists, auth on', () => {
  let gw: TestGateway;
  const all = generateApiKey();
  const scoped = generateApiKey();
  before(async () => {
    gw = await startTestGateway({
      services,
      auth: {
        enabled: true,
        api_keys: [
          { name: 'all', sha256: all.sha256 },
          { name: 'embed-only', sha256: scoped.sha256, services: ['embed'] },
        ],
      },
    });
  });
  after(() => gw.close());

  test('without a key: 401 in OpenAI error shape', async () => {
    const res = await fetch(`${gw.url}/v1/models`);
    assert.equal(res.status, 401);
    const body = await json(res);
    assert.equal((body.error as Record<string, unknown>).type, 'authentication_error');
    assert.equal(body.code, 'HESTIA_UNAUTHORIZED');
  });

  test('a key scoped to services sees only their models; an unscoped key sees all', async () => {
    const ids = async (key: string, path: string) => {
      const body = await json(await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${key}` } }));
      const list = (body.data ?? body.models) as Array<Record<string, unknown>>;
      return list.map((m) => m.id ?? m.name);
    };
    assert.deepEqual(await ids(scoped.key, '/v1/models'), ['org/nomic-embed']);
    assert.deepEqual(await ids(scoped.key, '/api/tags'), ['org/nomic-embed']);
    assert.deepEqual(await ids(all.key, '/v1/models'), ['qwen2.5:7b', 'qwen', 'org/nomic-embed']);
    const hidden = await fetch(`${gw.url}/v1/models/qwen`, { headers: { authorization: `Bearer ${scoped.key}` } });
    assert.equal(hidden.status, 404);
  });
});

test('a model name listed by two services is a config error naming both', () => {
  const r = resolveConfig(
    'services:\n  a: {base_url: "http://127.0.0.1:1", models: [m1, shared]}\n  b: {base_url: "http://127.0.0.1:2", models: [shared]}\n',
    {},
    { file: 'hestia.yml' },
  );
  assert.equal(r.ok, false);
  if (r.ok) return;
  const issue = r.issues.find((i) => i.path === 'services.b.models.0');
  assert.ok(issue, JSON.stringify(r.issues));
  assert.match(issue.message, /'shared'.*service 'a'/);
});
