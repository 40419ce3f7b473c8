import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { generateApiKey } from '../../src/auth/api-keys.ts';
import { KeyNameTakenError, KeyStore, LAST_USED_RESOLUTION_MS } from '../../src/auth/key-store.ts';
import { migrateApiKeys } from '../../src/store/migrations.ts';

const dir = mkdtempSync(join(tmpdir(), 'hestia-keystore-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function open(name: string, now?: () => number) {
  const db = new BetterSqlite3(join(dir, name));
  migrateApiKeys(db);
  return { db, store: new KeyStore(db, now ? { now } : {}) };
}

describe('KeyStore on a real SQLite file', () => {
  test('add, find by digest, list, revoke; only the digest is stored', () => {
    let t = 5000;
    const { db, store } = open('a.db', () => t);
    const k = generateApiKey();
    store.add({ name: 'ci', prefix: k.prefix, sha256: k.sha256, services: ['a', 'b'] });
    const found = store.findByDigest(k.sha256);
    assert.equal(found?.name, 'ci');
    assert.deepEqual(found?.services, ['a', 'b']);
    assert.equal(found?.createdAt, 5000);
    assert.equal(found?.revokedAt, null);
    const dump = JSON.stringify(db.prepare('SELECT * FROM api_keys').all());
    assert.ok(!dump.includes(k.key), 'the plaintext key is not in the table');
    assert.ok(!dump.includes(k.key.slice(12)), 'nor its secret part');

    t = 6000;
    assert.equal(store.revoke('ci'), true);
    assert.equal(store.revoke('ci'), false, 'already revoked');
    assert.equal(store.revoke('nope'), false);
    assert.equal(store.findByDigest(k.sha256)?.revokedAt, 6000, 'revoked keys stay findable (reason revoked_key)');
    db.close();
  });

  test('a live name cannot be reused; a revoked one can (the old key is then unknown)', () => {
    const { db, store } = open('b.db');
    const a = generateApiKey();
    store.add({ name: 'x', prefix: a.prefix, sha256: a.sha256 });
    const b = generateApiKey();
    assert.throws(() => store.add({ name: 'x', prefix: b.prefix, sha256: b.sha256 }), KeyNameTakenError);
    store.revoke('x');
    store.add({ name: 'x', prefix: b.prefix, sha256: b.sha256 });
    assert.equal(store.findByDigest(a.sha256), undefined);
    assert.equal(store.findByDigest(b.sha256)?.services, null, 'no scope = every service');
    assert.equal(store.list().length, 1);
    db.close();
  });

  test('touch writes last_used_at at most once per resolution window', () => {
    let t = 0;
    const { db, store } = open('c.db', () => t);
    const k = generateApiKey();
    store.add({ name: 'k', prefix: k.prefix, sha256: k.sha256 });
    t = 100;
    store.touch(k.sha256);
    assert.equal(store.findByDigest(k.sha256)?.lastUsedAt, 100);
    t = 100 + LAST_USED_RESOLUTION_MS - 1;
    store.touch(k.sha256);
    assert.equal(store.findByDigest(k.sha256)?.lastUsedAt, 100);
    t = 100 + LAST_USED_RESOLUTION_MS;
    store.touch(k.sha256);
    assert.equal(store.findByDigest(k.sha256)?.lastUsedAt, t);
    db.close();
  });

  test('the migration is idempotent, and a change by another connection is seen at once', () => {
    const one = open('d.db');
    migrateApiKeys(one.db);
    const two = open('d.db');
    const k = generateApiKey();
    two.store.add({ name: 'other-process', prefix: k.prefix, sha256: k.sha256 });
    assert.equal(one.store.findByDigest(k.sha256)?.name, 'other-process');
    two.store.revoke('other-process');
    assert.notEqual(one.store.findByDigest(k.sha256)?.revokedAt, null);
    one.db.close();
    two.db.close();
  });

  test('a corrupt scope denies every service rather than allowing all', () => {
    const { db, store } = open('e.db');
    db.prepare(
      "INSERT INTO api_keys (name, prefix, sha256, services, created_at) VALUES ('z', 'hst_', 'ab', 'not json', 1)",
    ).run();
    assert.deepEqual(store.findByDigest('ab')?.services, []);
    db.close();
  });
});
