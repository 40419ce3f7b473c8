import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readCookieValues, SessionStore, sessionCookie } from '../../src/auth/session.ts';

describe('SessionStore', () => {
  test('create/get/destroy, with an absolute TTL on the injected clock', () => {
    let t = 1000;
    const s = new SessionStore({ now: () => t });
    const { id } = s.create('admin', 500);
    assert.match(id, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(s.get(id)?.username, 'admin');
    t = 1499;
    assert.ok(s.get(id));
    t = 1500;
    assert.equal(s.get(id), undefined, 'expired exactly at ttl');
    assert.equal(s.size, 0, 'expired session dropped when seen');
    const b = s.create('admin', 500).id;
    s.destroy(b);
    assert.equal(s.get(b), undefined);
  });

  test('unknown and malformed ids are not sessions', () => {
    const s = new SessionStore();
    s.create('admin', 1000);
    assert.equal(s.get('x'.repeat(43)), undefined);
    assert.equal(s.get(''), undefined);
    assert.equal(s.get('a;b'), undefined);
  });

  test('bounded: the oldest session is evicted when full', () => {
    const s = new SessionStore({ maxSessions: 3 });
    const ids = Array.from({ length: 5 }, () => s.create('admin', 60_000).id);
    assert.equal(s.size, 3);
    assert.equal(s.get(ids[0]!), undefined);
    assert.equal(s.get(ids[1]!), undefined);
    assert.ok(s.get(ids[4]!));
  });
});

describe('cookies', () => {
  test('readCookieValues finds every value of the name and nothing else', () => {
    assert.deepEqual(readCookieValues('a=1; hestia_session=abc; b=2; hestia_session="def"', 'hestia_session'), [
      'abc',
      'def',
    ]);
    assert.deepEqual(readCookieValues('xhestia_session=1; hestia_sessionx=2', 'hestia_session'), []);
    assert.deepEqual(readCookieValues(undefined, 'hestia_session'), []);
    assert.equal(readCookieValues(Array(50).fill('hestia_session=a').join('; '), 'hestia_session').length, 8);
  });

  test('sessionCookie sets HttpOnly, SameSite=Strict, Path=/, and Secure only when asked', () => {
    assert.equal(
      sessionCookie('abc', { maxAgeSeconds: 60, secure: false }),
      'hestia_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60',
    );
    assert.match(sessionCookie('abc', { maxAgeSeconds: 60, secure: true }), /; Secure$/);
    assert.throws(() => sessionCookie('a;b', { maxAgeSeconds: 1, secure: false }));
  });
});
