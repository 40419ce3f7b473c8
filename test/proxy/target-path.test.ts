import assert from 'node:assert/strict';
import { test } from 'node:test';
import { basePathOf, escapesBase, joinUpstreamPath, splitServicePath } from '../../src/proxy/target-path.ts';
import { servicePathProblem } from '../../src/server/dispatch-validation.ts';

test('splitServicePath finds the id and keeps the rest raw', () => {
  assert.deepEqual(splitServicePath('/services/a/b%2Fc?x=1'), { id: 'a', rest: '/b%2Fc?x=1' });
  assert.deepEqual(splitServicePath('/services/a'), { id: 'a', rest: '' });
  assert.deepEqual(splitServicePath('/services/a?x'), { id: 'a', rest: '?x' });
  assert.deepEqual(splitServicePath('/services/my%2Dsvc/'), { id: 'my-svc', rest: '/' });
  assert.equal(splitServicePath('/services'), null);
  assert.equal(splitServicePath('/services/'), null);
  assert.equal(splitServicePath('/services//x'), null);
  assert.equal(splitServicePath('/services/%E0%A4%A/x'), null);
});

test('joinUpstreamPath: root, query-only and paths under a base', () => {
  assert.equal(joinUpstreamPath('', ''), '/');
  assert.equal(joinUpstreamPath('', '?a=1'), '/?a=1');
  assert.equal(joinUpstreamPath('', '/x'), '/x');
  assert.equal(joinUpstreamPath('/api', ''), '/api/');
  assert.equal(joinUpstreamPath('/api', '/v1?q'), '/api/v1?q');
  assert.equal(basePathOf(new URL('http://h:1/api/')), '/api');
  assert.equal(basePathOf(new URL('http://h:1')), '');
});

test('escapesBase: only climbing above the base counts, whatever the spelling', () => {
  for (const p of ['/..', '/../x', '/a/../../x', '/%2e%2e/x', '/%2E./x', '/..%2fx', '/a/..%5c..%5cx', '/..\\x']) {
    assert.equal(escapesBase(p), true, p);
  }
  for (const p of ['', '/', '/a/../b', '/a/./b', '/...', '/..a', '/x?p=../../..', '/%2e/x', '/a%2Fb']) {
    assert.equal(escapesBase(p), false, p);
  }
});

test("escapesBase: ..;param segments and double-encoded dots climb too (the dispatcher's rule)", () => {
  for (const p of [
    '/..;/x',
    '/pub/..;/../x',
    '/..;jsessionid=1/x',
    '/%252e%252e/x',
    '/%25252e%25252e/x',
    '/a/%252e%252e%252f..',
  ]) {
    assert.equal(escapesBase(p), true, p);
    assert.notEqual(servicePathProblem(p), null, p);
  }
  for (const p of ['/a;b/../c', '/a/..;/b', '/%252e/x', '/x;..']) {
    assert.equal(escapesBase(p), false, p);
    assert.equal(servicePathProblem(p), null, p);
  }
});
