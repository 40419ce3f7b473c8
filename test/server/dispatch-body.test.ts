import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodeResponseBody, flattenHeaders } from '../../src/server/dispatch-body.ts';

const enc = (ct: string | undefined, bytes: Buffer | string) =>
  encodeResponseBody(ct, typeof bytes === 'string' ? Buffer.from(bytes) : bytes);

test('JSON responses are parsed (application/json and +json)', () => {
  assert.deepEqual(enc('application/json; charset=utf-8', '{"a":[1,2]}'), { body: { a: [1, 2] } });
  assert.deepEqual(enc('application/problem+json', '{"title":"x"}'), { body: { title: 'x' } });
});

test('JSON that does not parse is returned as text', () => {
  assert.deepEqual(enc('application/json', '{"a":'), { body: '{"a":' });
});

test('text types are strings, decoded with their charset', () => {
  assert.deepEqual(enc('text/plain', 'héllo'), { body: 'héllo' });
  assert.deepEqual(enc('text/html; charset=iso-8859-1', Buffer.from([0x63, 0x61, 0x66, 0xe9])), { body: 'café' });
  assert.deepEqual(enc('application/x-ndjson', '{"a":1}\n{"a":2}\n'), { body: '{"a":1}\n{"a":2}\n' });
  assert.deepEqual(enc('image/svg+xml', '<svg/>'), { body: '<svg/>' });
});

test('binary bodies are base64 with a flag; no Content-Type is sniffed', () => {
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x00, 0xff]);
  assert.deepEqual(enc('image/png', png), { body: png.toString('base64'), bodyEncoding: 'base64' });
  assert.deepEqual(enc('application/octet-stream', 'ascii'), {
    body: Buffer.from('ascii').toString('base64'),
    bodyEncoding: 'base64',
  });
  assert.deepEqual(enc(undefined, 'just text'), { body: 'just text' });
  assert.equal(enc(undefined, Buffer.from([0xff, 0xfe, 0x00])).bodyEncoding, 'base64');
  assert.equal(enc('text/plain', Buffer.from([0xc3, 0x28])).bodyEncoding, 'base64');
});

test('no bytes → body null', () => {
  assert.deepEqual(enc('application/json', ''), { body: null });
});

test('headers: lower-case, hop-by-hop dropped, repeats joined (set-cookie by newline)', () => {
  assert.deepEqual(
    flattenHeaders({
      'Content-Type': 'application/json',
      connection: 'keep-alive',
      'transfer-encoding': 'chunked',
      vary: ['accept', 'origin'],
      'set-cookie': ['a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT', 'b=2'],
    }),
    {
      'content-type': 'application/json',
      vary: 'accept, origin',
      'set-cookie': 'a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT\nb=2',
    },
  );
});
