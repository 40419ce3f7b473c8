/**
 * The built-in `ollama` service exists only when there is no config file or the file defines
 * no services, and it has a health_url, so a start is ready only when an Ollama answers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveConfig } from '../../src/config/resolve.ts';
import { startTestGateway } from '../helpers/gateway.ts';

function services(text: string): Record<string, { base_url: string; health_url?: string | null | undefined }> {
  const r = resolveConfig(text, {}, { file: 'hestia_config.yml' });
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues));
  return r.config.services;
}

test('a file that defines services gets exactly those: no built-in ollama', () => {
  assert.deepEqual(Object.keys(services('services:\n  a:\n    base_url: http://a:1\n')), ['a']);
});

test('a file without services (and defaults mode) has ollama, with a health_url on /api/tags', () => {
  for (const text of ['', 'server:\n  port: 8081\n', 'services: {}\n']) {
    const o = services(text).ollama;
    assert.ok(o, JSON.stringify(text));
    assert.equal(o.base_url, 'http://localhost:11434');
    assert.equal(o.health_url, 'http://localhost:11434/api/tags');
  }
});

test('POST /v1/services/ollama/start on a config that does not declare it is 404, not a phantom "hot"', async (t) => {
  const gw = await startTestGateway({ services: { a: { base_url: 'http://127.0.0.1:9' } } });
  t.after(() => gw.close());
  const res = await fetch(`${gw.url}/v1/services/ollama/start`, { method: 'POST' });
  assert.equal(res.status, 404);
  const body = (await res.json()) as { code: string; services: string[] };
  assert.equal(body.code, 'HESTIA_UNKNOWN_SERVICE');
  assert.deepEqual(body.services, ['a']);
});
