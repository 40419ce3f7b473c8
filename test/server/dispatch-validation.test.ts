import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HestiaError } from '../../src/errors.ts';
import { parseDispatchRequest, servicePathProblem } from '../../src/server/dispatch-validation.ts';

const ok = (input: unknown) => {
  const r = parseDispatchRequest(input);
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  return r.value;
};

const bad = (input: unknown) => {
  const r = parseDispatchRequest(input);
  assert.ok(!r.ok, 'expected a validation error');
  assert.ok(r.error instanceof HestiaError);
  assert.equal(r.error.code, 'HESTIA_VALIDATION');
  assert.equal(r.error.status, 400);
  return r.error;
};

const base = { serviceId: 'ollama', method: 'GET', path: '/api/tags' };

test('a minimal request is normalised: upper-case method, no headers, no body', () => {
  assert.deepEqual(ok({ ...base, method: 'get' }), {
    serviceId: 'ollama',
    method: 'GET',
    path: '/api/tags',
    headers: {},
    body: null,
  });
});

test('a path without its leading slash gets one; query and encoding are kept as sent', () => {
  assert.equal(ok({ ...base, path: 'api/tags?x=%2F&y=..' }).path, '/api/tags?x=%2F&y=..');
});

test('a JSON body is serialised with Content-Type application/json unless one is given', () => {
  const v = ok({ ...base, method: 'POST', body: { model: 'llama3', n: 1 } });
  assert.equal(v.body?.toString(), '{"model":"llama3","n":1}');
  assert.equal(v.headers['content-type'], 'application/json');
  const w = ok({ ...base, method: 'POST', headers: { 'Content-Type': 'application/x-thing' }, body: [1] });
  assert.equal(w.headers['content-type'], 'application/x-thing');
});

test('a string body is sent as-is; base64 bodies are decoded; null means no body', () => {
  const s = ok({ ...base, method: 'POST', body: 'plain words' });
  assert.equal(s.body?.toString(), 'plain words');
  assert.equal(s.headers['content-type'], 'text/plain; charset=utf-8');
  const b = ok({ ...base, method: 'PUT', body: Buffer.from([0, 255, 1]).toString('base64'), bodyEncoding: 'base64' });
  assert.deepEqual([...(b.body ?? [])], [0, 255, 1]);
  assert.equal(ok({ ...base, body: null }).body, null);
});

test('header names are lower-cased, scalar values stringified; Host/Content-Length/Transfer-Encoding dropped', () => {
  const v = ok({
    ...base,
    headers: { 'X-Count': 3, 'X-Flag': true, Host: 'evil', 'Content-Length': '999', 'Transfer-Encoding': 'chunked' },
  });
  assert.deepEqual(v.headers, { 'x-count': '3', 'x-flag': 'true' });
});

for (const [what, input, field, pattern] of [
  ['a body that is not an object', 'hello', '(body)', /request body must be a JSON object/],
  ['a null body', null, '(body)', /must be a JSON object/],
  ['missing serviceId', { method: 'GET', path: '/' }, 'serviceId', /serviceId is required/],
  ['empty serviceId', { ...base, serviceId: '' }, 'serviceId', /must not be empty/],
  ['numeric serviceId', { ...base, serviceId: 7 }, 'serviceId', /serviceId is required/],
  ['missing method', { serviceId: 'x', path: '/' }, 'method', /method is required/],
  ['unknown method', { ...base, method: 'TRACE' }, 'method', /must be one of GET, HEAD/],
  ['missing path', { serviceId: 'x', method: 'GET' }, 'path', /path is required/],
  ['empty path', { ...base, path: '' }, 'path', /must not be empty/],
  ['headers as an array', { ...base, headers: ['a'] }, 'headers', /must be an object/],
  ['a header value object', { ...base, headers: { 'x-a': { b: 1 } } }, 'headers.x-a', /must be a string/],
  ['a header value with CRLF', { ...base, headers: { 'x-a': 'v\r\nInjected: 1' } }, 'headers.x-a', /CR, LF/],
  ['a bad header name', { ...base, headers: { 'bad name': 'v' } }, 'headers.bad name', /not a valid header name/],
  ['an unknown bodyEncoding', { ...base, method: 'POST', body: 'x', bodyEncoding: 'hex' }, 'bodyEncoding', /base64/],
  ['a non-base64 body', { ...base, method: 'POST', body: '%%%', bodyEncoding: 'base64' }, 'body', /base64 string/],
  ['a body on HEAD', { ...base, method: 'HEAD', body: { a: 1 } }, 'body', /absent for a HEAD/],
] as Array<[string, unknown, string, RegExp]>) {
  test(`400 naming the field: ${what}`, () => {
    const err = bad(input);
    assert.equal(err.details.field, field);
    assert.match(err.message, pattern);
  });
}

test('several bad fields are all named', () => {
  const err = bad({ method: 'FETCH', path: 'http://x/' });
  const fields = (err.details.issues as Array<{ field: string }>).map((i) => i.field).sort();
  assert.deepEqual(fields, ['method', 'path', 'serviceId']);
});

// Every path the dispatcher must refuse (SPEC §2): absolute URLs, network-path references,
// and `..` that climbs above the service's base path, however it is spelled.
for (const [path, pattern] of [
  ['http://169.254.169.254/latest/meta-data', /not an absolute URL/],
  ['HTTPS://example.com/', /not an absolute URL/],
  ['file:///etc/passwd', /not an absolute URL/],
  ['javascript:alert(1)', /not an absolute URL/],
  ['//evil.example/x', /network-path reference/],
  ['/\\evil.example/x', /network-path reference/],
  ['\\\\evil.example\\x', /network-path reference/],
  ['/..', /climb above/],
  ['/../admin', /climb above/],
  ['../admin', /climb above/],
  ['/a/../../admin', /climb above/],
  ['/a/./../../admin', /climb above/],
  ['/%2e%2e/admin', /climb above/],
  ['/%2E%2E/admin', /climb above/],
  ['/.%2e/admin', /climb above/],
  ['/%2e./admin', /climb above/],
  ['/%252e%252e/admin', /climb above/],
  ['/a/..%2f..%2fadmin', /climb above/],
  ['/a/..%5c..%5cadmin', /climb above/],
  ['/a\\..\\..\\admin', /climb above/],
  ['/..;/admin', /climb above/],
  ['/../admin?x=1', /climb above/],
  ['/a b', /spaces or control characters/],
  ['/a\r\nHost: evil', /spaces or control characters/],
  ['/a#frag', /fragment/],
] as Array<[string, RegExp]>) {
  test(`path ${JSON.stringify(path)} → 400 naming path`, () => {
    const err = bad({ ...base, path });
    assert.equal(err.details.field, 'path');
    assert.match(err.message, pattern);
  });
}

for (const path of ['/', '/a/../b', '/a/b/../../c', '/%2e%2e-not-dots', '/a..b/c', '/v1/models?next=../x', '/a%20b']) {
  test(`path ${JSON.stringify(path)} stays inside the service and is accepted`, () => {
    assert.equal(servicePathProblem(path), null);
  });
}
