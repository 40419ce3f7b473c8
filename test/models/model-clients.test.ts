/**
 * The model endpoints through the real `openai`, `@anthropic-ai/sdk` and `ollama` client libraries, against the
 * gateway's main port, with two fake model servers (test/fixtures/model-server.mjs) started by
 * the `process` launcher on the first request (cold start through the model door).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import Anthropic from '@anthropic-ai/sdk';
import { Ollama } from 'ollama';
import OpenAI from 'openai';
import { generateApiKey } from '../../src/auth/api-keys.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { freePort } from '../helpers/net.ts';
import { modelService } from './model-servers.ts';

describe('model endpoints with the openai, anthropic and ollama clients', () => {
  let gw: TestGateway;
  let alphaPort: number;
  let openai: OpenAI;
  let ollama: Ollama;
  const control = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${alphaPort}${path}`, init);

  before(async () => {
    alphaPort = await freePort();
    const betaPort = await freePort();
    gw = await startTestGateway({
      services: {
        alpha: modelService('alpha', alphaPort, ['alpha-chat', 'alpha:7b']),
        beta: modelService('beta', betaPort, ['beta-embed']),
      },
    });
    openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    ollama = new Ollama({ host: gw.url });
  });
  after(() => gw.close());

  test('list models (openai and ollama)', async () => {
    const ids: string[] = [];
    for await (const m of openai.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['alpha-chat', 'alpha:7b', 'beta-embed']);
    const tags = await ollama.list();
    assert.deepEqual(
      tags.models.map((m) => m.name),
      ids,
    );
  });

  test('openai chat: cold start, answer from the model named in the body', async () => {
    const r = await openai.chat.completions.create({
      model: 'alpha-chat',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(r.choices[0]?.message.content, 'alpha says hello');
    assert.equal(r.model, 'alpha-chat');
    assert.equal(gw.ctx.services.get('alpha')?.state, 'hot');
  });

  test('openai chat streaming arrives incrementally (first chunk while the upstream holds the rest)', async () => {
    const stream = await openai.chat.completions.create({
      model: 'alpha:7b',
      messages: [{ role: 'user', content: 'hold' }],
      stream: true,
    });
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    // The server has sent only its first chunk and waits for /_release: it got here streamed.
    assert.equal(first.value?.choices[0]?.delta.content, 'alpha');
    await control('/_release', { method: 'POST' });
    let rest = '';
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      rest += r.value.choices[0]?.delta.content ?? '';
    }
    assert.equal(rest, ' says hello');
  });

  test('openai embeddings on the other service', async () => {
    const r = await openai.embeddings.create({ model: 'beta-embed', input: ['abc', 'hello'] });
    assert.deepEqual(
      r.data.map((d) => d.embedding),
      [
        [3, 4, 0.5],
        [5, 4, 0.5],
      ],
    );
  });

  test('ollama chat (streamed and not) and embed', async () => {
    const one = await ollama.chat({ model: 'alpha-chat', messages: [{ role: 'user', content: 'hi' }], stream: false });
    assert.equal(one.message.content, 'alpha says hello');
    let text = '';
    for await (const part of await ollama.chat({
      model: 'alpha-chat',
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    }))
      text += part.message.content;
    assert.equal(text, 'alpha says hello');
    const e = await ollama.embed({ model: 'beta-embed', input: 'abcd' });
    assert.deepEqual(e.embeddings, [[4, 4, 0.5]]);
  });

  test('an unknown model: the exception message names the model (openai and ollama)', async () => {
    await assert.rejects(
      openai.chat.completions.create({ model: 'llama-99', messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.NotFoundError, String(err));
        assert.match(err.message, /llama-99/);
        assert.equal(err.code, 'model_not_found');
        return true;
      },
    );
    await assert.rejects(
      ollama.chat({ model: 'llama-99', messages: [{ role: 'user', content: 'hi' }] }),
      (err: Error) => {
        assert.match(err.message, /llama-99/);
        return true;
      },
    );
  });

  test('a body without a model: 400 in the endpoint family shape', async () => {
    const v1 = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [] }),
    });
    assert.equal(v1.status, 400);
    const b1 = (await v1.json()) as { error: { message: string; type: string }; code: string };
    assert.equal(b1.error.type, 'invalid_request_error');
    assert.equal(b1.code, 'HESTIA_BAD_REQUEST');
    const api = await fetch(`${gw.url}/api/chat`, { method: 'POST', body: 'not json' });
    assert.equal(api.status, 400);
    const b2 = (await api.json()) as { error: string; code: string };
    assert.equal(typeof b2.error, 'string');
    assert.equal(b2.code, 'HESTIA_BAD_REQUEST');
  });

  test('abort mid-stream reaches the upstream (openai and ollama)', async () => {
    const stream = await openai.chat.completions.create({
      model: 'alpha-chat',
      messages: [{ role: 'user', content: 'hold' }],
      stream: true,
    });
    const it = stream[Symbol.asyncIterator]();
    assert.equal((await it.next()).value?.choices[0]?.delta.content, 'alpha');
    stream.controller.abort();
    // Long poll: answers once the server saw its held response cut.
    assert.deepEqual(await (await control('/_aborted?wait=1')).json(), { aborted: 1 });

    const chat = await ollama.chat({
      model: 'alpha-chat',
      messages: [{ role: 'user', content: 'hold' }],
      stream: true,
    });
    const oit = chat[Symbol.asyncIterator]();
    assert.equal((await oit.next()).value?.message.content, 'alpha');
    chat.abort();
    assert.deepEqual(await (await control('/_aborted?wait=2')).json(), { aborted: 2 });
  });

  test('anthropic messages: create, streaming that arrives incrementally, abort mid-stream reaches the upstream', async () => {
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'unused', maxRetries: 0 });
    const one = await anthropic.messages.create({
      model: 'alpha-chat',
      max_tokens: 16,
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(one.model, 'alpha-chat');
    assert.deepEqual(
      one.content.map((b) => (b.type === 'text' ? b.text : b.type)),
      ['alpha says hello'],
    );

    // Streamed: the first text delta arrives while the server holds the rest.
    const held = await anthropic.messages.create({
      model: 'alpha:7b',
      max_tokens: 16,
      stream: true,
      messages: [{ role: 'user', content: 'hold' }],
    });
    const it = held[Symbol.asyncIterator]();
    const firstText = async (): Promise<string> => {
      for (;;) {
        const r = await it.next();
        assert.ok(!r.done, 'the stream ended before any text');
        if (r.value.type === 'content_block_delta' && r.value.delta.type === 'text_delta') return r.value.delta.text;
      }
    };
    assert.equal(await firstText(), 'alpha');
    await control('/_release', { method: 'POST' });
    let rest = '';
    let stopped = false;
    for (;;) {
      const r = await it.next();
      if (r.done) break;
      if (r.value.type === 'content_block_delta' && r.value.delta.type === 'text_delta') rest += r.value.delta.text;
      if (r.value.type === 'message_stop') stopped = true;
    }
    assert.equal(rest, ' says hello');
    assert.ok(stopped, 'message_stop arrived');

    // The SDK's stream helper, aborted after the first text: the upstream sees its response cut.
    const aborting = anthropic.messages.stream({
      model: 'alpha-chat',
      max_tokens: 16,
      messages: [{ role: 'user', content: 'hold' }],
    });
    const ended = aborting.done().then(
      () => 'completed',
      (e: Error) => e.name,
    );
    const firstDelta = new Promise<string>((resolve) => aborting.on('text', (t) => resolve(t)));
    assert.equal(await firstDelta, 'alpha');
    aborting.abort();
    assert.equal(await ended, 'APIUserAbortError');
    assert.deepEqual(await (await control('/_aborted?wait=3')).json(), { aborted: 3 });
  });

  test('anthropic: an unknown model is a NotFoundError whose message names the model', async () => {
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: 'unused', maxRetries: 0 });
    await assert.rejects(
      anthropic.messages.create({ model: 'claude-nope', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => {
        assert.ok(err instanceof Anthropic.NotFoundError, String(err));
        assert.equal(err.status, 404);
        assert.match(err.message, /claude-nope/);
        assert.match(String(err.apiMessage), /the model 'claude-nope' does not exist/);
        return true;
      },
    );
  });

  test('the request log line carries the model endpoint as its route', () => {
    const lines = gw.logs().filter((l) => l.event_type === 'request' && l.route === '/v1/chat/completions');
    assert.ok(lines.length >= 3);
    assert.ok(lines.every((l) => l.service_id === 'alpha' || l.service_id === null));
    assert.ok(gw.logs().some((l) => l.event_type === 'request' && l.route === '/api/embed' && l.status === 200));
  });
});

describe('model endpoints with auth', () => {
  let gw: TestGateway;
  const scoped = generateApiKey();
  before(async () => {
    gw = await startTestGateway({
      services: {
        alpha: { base_url: 'http://127.0.0.1:9', models: ['alpha-chat'] },
        beta: { base_url: 'http://127.0.0.1:9', models: ['beta-embed'] },
      },
      auth: { enabled: true, api_keys: [{ name: 'beta-only', sha256: scoped.sha256, services: ['beta'] }] },
    });
  });
  after(() => gw.close());

  const post = (path: string, body: unknown, key?: string) =>
    fetch(`${gw.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
      body: JSON.stringify(body),
    });

  test('no key: 401 before the body is looked at; a scoped key may use only its services’ models', async () => {
    const none = await post('/v1/chat/completions', { model: 'alpha-chat' });
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as { error: { type: string } }).error.type, 'authentication_error');
    const other = await post('/v1/chat/completions', { model: 'alpha-chat' }, scoped.key);
    assert.equal(other.status, 403);
    assert.equal(((await other.json()) as { code: string }).code, 'HESTIA_FORBIDDEN');
    const unknown = await post('/api/chat', { model: 'nope' }, scoped.key);
    assert.equal(unknown.status, 404);
    const body = (await unknown.json()) as { error: string; models: string[] };
    assert.match(body.error, /nope/);
    assert.deepEqual(body.models, ['beta-embed']);
    // Its own model gets through admission (the upstream at port 9 is unreachable: 502, not 401/403).
    const own = await post('/v1/embeddings', { model: 'beta-embed', input: 'x' }, scoped.key);
    assert.equal(own.status, 502);
    assert.equal(((await own.json()) as { error: { type: string } }).error.type, 'api_error');
  });
});

describe('model endpoints: lifecycle errors in each API family’s shape', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      services: {
        // Its process exits at once: every start fails.
        broken: {
          base_url: 'http://127.0.0.1:9',
          health_url: 'http://127.0.0.1:9/health',
          models: ['broken-model'],
          start_timeout_ms: 20_000,
          launcher: { type: 'process', command: [process.execPath, '-e', 'process.exit(3)'] },
        },
      },
    });
  });
  after(() => gw.close());

  test('a start that fails: 503 HESTIA_START_FAILED, OpenAI shape on /v1 (readable openai exception), envelope on /api', async () => {
    const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    await assert.rejects(
      openai.chat.completions.create({ model: 'broken-model', messages: [{ role: 'user', content: 'hi' }] }),
      (err: unknown) => {
        assert.ok(err instanceof OpenAI.InternalServerError, String(err));
        assert.equal(err.status, 503);
        assert.match(err.message, /broken/);
        assert.equal(err.code, 'hestia_start_failed');
        return true;
      },
    );
    const ollama = new Ollama({ host: gw.url });
    await assert.rejects(
      ollama.chat({ model: 'broken-model', messages: [{ role: 'user', content: 'hi' }] }),
      (err: Error & { status_code?: number }) => {
        assert.equal(err.status_code, 503);
        assert.match(err.message, /broken/);
        return true;
      },
    );
  });
});
