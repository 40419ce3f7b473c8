import assert from 'node:assert/strict';
import { test } from 'node:test';
import { modelRouter } from '../../src/routing/strategies/model-router.ts';
import type { BodyView } from '../../src/routing/types.ts';
import { cfg, jsonBody, snap, view } from './helpers.ts';

const BASE = 'http://base:11434';
const routing = cfg({ by_model: { llama3: 'http://a:1', mistral: 'http://b:2', 'llama3:70b': 'http://big:3' } });
const pick = (body: BodyView, c = routing) => modelRouter.select(view(body), snap([], BASE), c, undefined);

test('model_router declares json_body (so the gateway reads the body) and no state', () => {
  assert.ok(modelRouter.features.includes('json_body'));
  assert.equal(modelRouter.createState, undefined);
});

test('a mapped model goes to its by_model URL', () => {
  assert.deepEqual(pick(jsonBody({ model: 'mistral', prompt: 'hi' })), {
    url: 'http://b:2',
    reason: "model 'mistral' → by_model",
  });
});

test('an exact name:tag entry wins; otherwise name:tag falls back to the bare name', () => {
  assert.equal(pick(jsonBody({ model: 'llama3:70b' })).url, 'http://big:3');
  const d = pick(jsonBody({ model: 'llama3:8b' }));
  assert.equal(d.url, 'http://a:1');
  assert.match(d.reason, /by_model 'llama3'/);
});

test('an unmapped model goes to base_url', () => {
  const d = pick(jsonBody({ model: 'phi3' }));
  assert.equal(d.url, BASE);
  assert.match(d.reason, /'phi3' not in by_model/);
});

test('routing.model_key names the field read', () => {
  const c = cfg({ model_key: 'engine', by_model: { x: 'http://x:1' } });
  assert.equal(pick(jsonBody({ engine: 'x', model: 'llama3' }), c).url, 'http://x:1');
  assert.equal(pick(jsonBody({ model: 'x' }), c).url, BASE);
});

for (const [name, body] of [
  ['no body', { status: 'empty' }],
  ['a body that is not JSON', { status: 'not_json' }],
  ['a body over the cap', { status: 'too_large' }],
  ['a body that was not read', { status: 'not_read' }],
  ['a JSON array', jsonBody([{ model: 'llama3' }])],
  ['JSON null', jsonBody(null)],
  ['a JSON string', jsonBody('llama3')],
  ['a non-string model', jsonBody({ model: 42 })],
  ['a model named __proto__', jsonBody(JSON.parse('{"model":"__proto__"}'))],
  ['a model named constructor', jsonBody({ model: 'constructor' })],
  ['a model named toString:latest', jsonBody({ model: 'toString:latest' })],
] as Array<[string, BodyView]>) {
  test(`${name} → base_url, no error`, () => {
    assert.equal(pick(body).url, BASE);
  });
}
