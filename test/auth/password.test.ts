import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hashPassword, parsePasswordHash, verifyPassword } from '../../src/auth/password.ts';

// Small parameters keep the unit tests fast; the default parameters are exercised by the CLI test.
const FAST = { N: 1024, r: 8, p: 1 };

describe('password hashing', () => {
  test('hash/verify round trip; the encoding names its parameters', async () => {
    const h = await hashPassword('correct horse', FAST);
    assert.match(h, /^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.equal(await verifyPassword('correct horse', h), true);
    assert.equal(await verifyPassword('correct hors', h), false);
    assert.equal(await verifyPassword('', h), false);
  });

  test('the same password hashes differently (random salt)', async () => {
    assert.notEqual(await hashPassword('pw', FAST), await hashPassword('pw', FAST));
  });

  test("default parameters (N=2^15) work despite Node's 32 MiB maxmem default", async () => {
    const h = await hashPassword('pw');
    assert.match(h, /^scrypt\$32768\$8\$1\$/);
    assert.equal(await verifyPassword('pw', h), true);
  });

  test('unicode passwords are NFC-normalised (é composed or decomposed)', async () => {
    const h = await hashPassword('caf\u00e9', FAST);
    assert.equal(await verifyPassword('cafe\u0301', h), true);
  });

  test('malformed or hostile hashes are rejected, never thrown or run', async () => {
    assert.equal(await verifyPassword('pw', 'plaintext'), false);
    assert.ok('error' in parsePasswordHash('scrypt$1073741824$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA=='));
    assert.ok('error' in parsePasswordHash('scrypt$1000$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA=='));
    assert.ok('error' in parsePasswordHash('scrypt$1024$8$1$!!$aGFzaA=='));
    assert.ok('error' in parsePasswordHash('bcrypt$1024$8$1$c2FsdHNhbHQ=$aGFzaA=='));
    await assert.rejects(hashPassword(''), /empty/);
  });
});
