import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  bearerToken,
  DISPLAY_PREFIX_LENGTH,
  digestsEqual,
  generateApiKey,
  hashApiKey,
  readPresentedKey,
} from '../../src/auth/api-keys.ts';

describe('generateApiKey', () => {
  test('a key is hst_ + 256 bits of base64url, and its prefix and digest match it', () => {
    const k = generateApiKey();
    assert.match(k.key, /^hst_[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(k.key.slice(4), 'base64url').length, 32);
    assert.equal(k.prefix, k.key.slice(0, DISPLAY_PREFIX_LENGTH));
    assert.equal(k.sha256, createHash('sha256').update(k.key).digest('hex'));
    assert.ok(!k.sha256.includes(k.key));
  });

  test('keys differ every time', () => {
    const keys = new Set(Array.from({ length: 200 }, () => generateApiKey().key));
    assert.equal(keys.size, 200);
  });
});

describe('digestsEqual', () => {
  test('equal, different, and different-length digests', () => {
    const a = hashApiKey('a');
    assert.equal(digestsEqual(a, a.toUpperCase()), true);
    assert.equal(digestsEqual(a, hashApiKey('b')), false);
    assert.equal(digestsEqual(a, a.slice(0, 62)), false);
    assert.equal(digestsEqual('', ''), false);
  });
});

describe('readPresentedKey', () => {
  test('X-API-Key', () => {
    assert.deepEqual(readPresentedKey({ 'x-api-key': ' hst_abc ' }), {
      kind: 'key',
      source: 'x-api-key',
      key: 'hst_abc',
    });
  });
  test('Authorization: Bearer, scheme case-insensitive', () => {
    assert.deepEqual(readPresentedKey({ authorization: 'bEaReR hst_abc' }), {
      kind: 'key',
      source: 'authorization',
      key: 'hst_abc',
    });
  });
  test('X-API-Key wins over Authorization', () => {
    const r = readPresentedKey({ 'x-api-key': 'hst_x', authorization: 'Bearer hst_y' });
    assert.deepEqual(r, { kind: 'key', source: 'x-api-key', key: 'hst_x' });
  });
  test('Basic and other schemes are not gateway credentials', () => {
    assert.deepEqual(readPresentedKey({ authorization: 'Basic dXNlcjpwYXNz' }), { kind: 'none' });
    assert.deepEqual(readPresentedKey({}), { kind: 'none' });
  });
  test('empty, joined duplicates, spaces and overlong values are malformed', () => {
    assert.equal(readPresentedKey({ 'x-api-key': '' }).kind, 'malformed');
    assert.equal(readPresentedKey({ 'x-api-key': 'hst_a, hst_b' }).kind, 'malformed');
    assert.equal(readPresentedKey({ 'x-api-key': ['hst_a', 'hst_b'] }).kind, 'malformed');
    assert.equal(readPresentedKey({ authorization: 'Bearer a b' }).kind, 'malformed');
    assert.equal(readPresentedKey({ authorization: 'Bearer ' }).kind, 'malformed');
    assert.equal(readPresentedKey({ 'x-api-key': 'x'.repeat(513) }).kind, 'malformed');
  });
  test('bearerToken', () => {
    assert.equal(bearerToken('Bearer t'), 't');
    assert.equal(bearerToken('Bearertoken'), null);
    assert.equal(bearerToken(undefined), null);
  });
});
