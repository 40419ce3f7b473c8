import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { test } from 'node:test';
import { parseJsonBody, readBodyForRouting, requestHasBody } from '../../src/routing/json-body-peek.ts';

const chunks = (...parts: string[]) => Readable.from(parts.map((p) => Buffer.from(p)));

test('a body within the cap is parsed and forwarded as the very same bytes', async () => {
  // Odd spacing, key order and number spelling: re-serialising would change all three.
  const raw = '{ "prompt":"hi",  "model" : "llama3", "n": 1.0e1 }';
  const r = await readBodyForRouting(chunks(raw.slice(0, 10), raw.slice(10)), 1024);
  assert.deepEqual(r.view, { status: 'json', value: { prompt: 'hi', model: 'llama3', n: 10 } });
  assert.ok(Buffer.isBuffer(r.forward));
  assert.equal(r.forward.toString(), raw);
});

test('a body over the cap is not parsed; the forward stream replays the prefix and then the rest', async () => {
  const parts = ['{"model":', '"llama3",', '"pad":"', 'x'.repeat(100), '"}'];
  const source = chunks(...parts);
  const r = await readBodyForRouting(source, 15);
  assert.deepEqual(r.view, { status: 'too_large' });
  assert.equal(r.bufferedBytes, parts[0]!.length + parts[1]!.length);
  assert.ok(!Buffer.isBuffer(r.forward));
  assert.equal(await text(r.forward), parts.join(''));
});

test('empty, non-JSON and BOM-prefixed bodies', async () => {
  assert.deepEqual((await readBodyForRouting(chunks(), 10)).view, { status: 'empty' });
  assert.deepEqual((await readBodyForRouting(chunks('model=llama3'), 100)).view, { status: 'not_json' });
  assert.deepEqual(parseJsonBody(Buffer.from('\ufeff{"model":"x"}')), { status: 'json', value: { model: 'x' } });
});

test('a client stream that errors while being read rejects (the proxy turns that into an aborted request)', async () => {
  const broken = new Readable({
    read() {
      this.destroy(new Error('client went away'));
    },
  });
  await assert.rejects(readBodyForRouting(broken, 100), /client went away/);
});

test('requestHasBody: Content-Length > 0 or Transfer-Encoding', () => {
  assert.equal(requestHasBody({}), false);
  assert.equal(requestHasBody({ 'content-length': '0' }), false);
  assert.equal(requestHasBody({ 'content-length': '5' }), true);
  assert.equal(requestHasBody({ 'transfer-encoding': 'chunked' }), true);
});
