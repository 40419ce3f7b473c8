import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, beforeEach, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { generateApiKey } from '../../src/auth/api-keys.ts';
import { Authenticator, type AuthOutcome, scopeAllows } from '../../src/auth/authenticate.ts';
import { KeyStore } from '../../src/auth/key-store.ts';
import type { Config } from '../../src/config/schema.ts';
import { EventBus, type HestiaEvent } from '../../src/observability/events.ts';
import { migrateApiKeys } from '../../src/store/migrations.ts';
import { configFrom } from '../helpers/gateway.ts';

const dir = mkdtempSync(join(tmpdir(), 'hestia-authn-'));
const db = new BetterSqlite3(join(dir, 'keys.db'));
migrateApiKeys(db);
after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

const configKey = generateApiKey();
const scopedKey = generateApiKey();
const dbKey = generateApiKey();
const revokedKey = generateApiKey();
const store = new KeyStore(db);
store.add({ name: 'db-key', prefix: dbKey.prefix, sha256: dbKey.sha256 });
store.add({ name: 'old', prefix: revokedKey.prefix, sha256: revokedKey.sha256 });
store.revoke('old');

function makeConfig(extra: Record<string, unknown> = {}): Config {
  return configFrom({
    services: { a: { base_url: 'http://127.0.0.1:1' }, b: { base_url: 'http://127.0.0.1:2' } },
    auth: {
      enabled: true,
      api_keys: [
        { name: 'cfg', sha256: configKey.sha256.toUpperCase() },
        { name: 'only-a', sha256: scopedKey.sha256, services: ['a'] },
      ],
    },
    ...extra,
  });
}

let t = 0;
let config = makeConfig();
let events: HestiaEvent[] = [];
let auth: Authenticator;
beforeEach(() => {
  t = 1_000_000;
  config = makeConfig();
  events = [];
  const bus = new EventBus();
  bus.on('event', (e) => events.push(e));
  auth = new Authenticator({ config: () => config, bus, keys: store, now: () => t });
});

const errCode = (o: AuthOutcome) => (o.ok ? 'ok' : o.error.code);

describe('authenticate', () => {
  test('config keys (hash in any case) and store keys pass, with either header form', () => {
    const a = auth.authenticate({ 'x-api-key': configKey.key }, '127.0.0.1', '/services/a/x', 'a');
    assert.deepEqual(a.ok && [a.keyName, a.source], ['cfg', 'x-api-key']);
    const b = auth.authenticate({ authorization: `Bearer ${dbKey.key}` }, '127.0.0.1', '/v1/services');
    assert.deepEqual(b.ok && [b.keyName, b.source], ['db-key', 'authorization']);
    assert.equal(events.length, 0);
  });

  test('missing, wrong and revoked keys are 401 with an auth_denied event that never holds the key', () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{}, 'missing_key'],
      [{ 'x-api-key': 'hst_wrong' }, 'invalid_key'],
      [{ authorization: `Bearer ${revokedKey.key}` }, 'revoked_key'],
      [{ 'x-api-key': '' }, 'invalid_key'],
    ];
    for (const [headers, reason] of cases) {
      const r = auth.authenticate(headers, '192.0.2.7', '/v1/services?token=secret-query');
      assert.equal(errCode(r), 'HESTIA_UNAUTHORIZED');
      assert.equal(!r.ok && r.error.status, 401);
      assert.equal(!r.ok && r.error.headers['www-authenticate'], 'Bearer realm="hestia"');
      const ev = events.at(-1)!;
      assert.equal(ev.type, 'auth_denied');
      assert.equal(ev.details.reason, reason);
      assert.equal(ev.details.client, '192.0.2.7');
      assert.equal(ev.details.path, '/v1/services', 'no query string');
    }
    const text = JSON.stringify(events);
    assert.ok(!text.includes(revokedKey.key) && !text.includes('hst_wrong') && !text.includes('secret-query'));
    assert.deepEqual(auth.metrics().denied.invalid_key, 2);
    assert.deepEqual(auth.metrics().denied.revoked_key, 1);
    assert.deepEqual(auth.metrics().denied.missing_key, 1);
  });

  test('scopes: a key limited to service a gets 403 for b and for global /v1 routes', () => {
    const h = { 'x-api-key': scopedKey.key };
    assert.equal(errCode(auth.authenticate(h, '::1', '/services/a/', 'a')), 'ok');
    assert.equal(errCode(auth.authenticate(h, '::1', '/services/b/', 'b')), 'HESTIA_FORBIDDEN');
    assert.equal(errCode(auth.authenticate(h, '::1', '/v1/services/a/status')), 'ok');
    assert.equal(errCode(auth.authenticate(h, '::1', '/v1/services/b/start')), 'HESTIA_FORBIDDEN');
    assert.equal(errCode(auth.authenticate(h, '::1', '/v1/services')), 'HESTIA_FORBIDDEN');
    assert.equal(errCode(auth.authenticate(h, '::1', '/metrics')), 'HESTIA_FORBIDDEN');
    const ev = events.find((e) => e.details.reason === 'forbidden');
    assert.equal(ev?.serviceId, 'b');
    assert.equal(ev?.details.keyName, 'only-a');
    assert.equal(auth.keyLimiter.check('::1').blocked, false, 'a scope refusal is not a guess');
  });

  test('repeated wrong keys block the address: 429 with Retry-After, even for a valid key, until it expires', () => {
    for (let i = 0; i < 5; i++) auth.authenticate({ 'x-api-key': `hst_guess${i}` }, '198.51.100.1', '/v1/x');
    const sixth = auth.authenticate({ 'x-api-key': 'hst_guess6' }, '198.51.100.1', '/v1/x');
    assert.equal(errCode(sixth), 'HESTIA_UNAUTHORIZED');
    assert.equal(events.at(-1)?.details.blockedForMs, 1000, 'the event says a block began');
    const eventsBefore = events.length;
    const blocked = auth.authenticate({ 'x-api-key': configKey.key }, '198.51.100.1', '/v1/x');
    assert.equal(errCode(blocked), 'HESTIA_TOO_MANY_REQUESTS');
    assert.equal(!blocked.ok && blocked.error.headers['retry-after'], '1');
    assert.equal(events.length, eventsBefore, 'no event per blocked request');
    assert.equal(auth.metrics().denied.blocked, 1);
    assert.equal(auth.metrics().blockedAddresses, 1);
    assert.equal(errCode(auth.authenticate({ 'x-api-key': configKey.key }, '198.51.100.2', '/v1/x')), 'ok');
    t += 1000;
    assert.equal(errCode(auth.authenticate({ 'x-api-key': configKey.key }, '198.51.100.1', '/v1/x')), 'ok');
  });

  test('with trust_proxy the right-most X-Forwarded-For entry is the client; without it, the socket', () => {
    const h = { 'x-forwarded-for': '203.0.113.9, 10.0.0.5' };
    assert.equal(auth.clientAddress(h, '127.0.0.1'), '127.0.0.1');
    config = makeConfig({ server: { trust_proxy: true } });
    assert.equal(auth.clientAddress(h, '127.0.0.1'), '10.0.0.5');
  });

  test('a reload that changes auth.api_keys takes effect', () => {
    const h = { 'x-api-key': configKey.key };
    assert.equal(errCode(auth.authenticate(h, '::1', '/v1/x')), 'ok');
    config = configFrom({ auth: { enabled: true, api_keys: [] } });
    assert.equal(errCode(auth.authenticate(h, '::1', '/v1/x')), 'HESTIA_UNAUTHORIZED');
  });

  test('enabled follows the config', () => {
    assert.equal(auth.enabled, true);
    config = configFrom({});
    assert.equal(auth.enabled, false);
  });
});

describe('stripGatewayCredentials', () => {
  test('X-API-Key always goes; a foreign Authorization stays', () => {
    const headers: Record<string, string> = { 'x-api-key': configKey.key, authorization: 'Bearer upstream-token' };
    const o = auth.authenticate(headers, '::1', '/services/a/', 'a');
    auth.stripGatewayCredentials(headers, o);
    assert.deepEqual(headers, { authorization: 'Bearer upstream-token' });
  });
  test('Authorization goes when it carried the gateway key', () => {
    const headers: Record<string, string> = { authorization: `Bearer ${dbKey.key}`, accept: '*/*' };
    const o = auth.authenticate(headers, '::1', '/services/a/', 'a');
    auth.stripGatewayCredentials(headers, o);
    assert.deepEqual(headers, { accept: '*/*' });
  });
  test('Authorization goes when it holds any other known gateway key, even without an outcome', () => {
    const headers: Record<string, string> = { 'x-api-key': dbKey.key, authorization: `Bearer ${configKey.key}` };
    auth.stripGatewayCredentials(headers);
    assert.deepEqual(headers, {});
    const basic: Record<string, string> = { authorization: 'Basic dXNlcjpwYXNz' };
    auth.stripGatewayCredentials(basic);
    assert.deepEqual(basic, { authorization: 'Basic dXNlcjpwYXNz' });
  });
});

describe('stripGatewayCredentials and the session cookie', () => {
  test('the hestia_session cookie never goes upstream; other cookies do', () => {
    const headers: Record<string, string> = { cookie: 'a=1; hestia_session=secret-session; b=2' };
    auth.stripGatewayCredentials(headers);
    assert.deepEqual(headers, { cookie: 'a=1; b=2' });
    const only: Record<string, string> = { cookie: 'hestia_session=x' };
    auth.stripGatewayCredentials(only);
    assert.deepEqual(only, {});
  });
});

describe('scopeAllows', () => {
  test('rules', () => {
    assert.equal(scopeAllows(null, '/anything'), true);
    assert.equal(scopeAllows(['a'], '/v1/requests'), true);
    assert.equal(scopeAllows(['a b'], '/v1/services/a%20b/status'), true);
    assert.equal(scopeAllows(['a'], '/v1/services/%E0%A4%A/status'), false);
    assert.equal(scopeAllows(['a'], '/v1/events'), false);
    assert.equal(scopeAllows([], '/services/a/', 'a'), false);
  });
});

describe('auth_denied events are throttled per address', () => {
  test('a keyless flood publishes at most 10 events a minute per address, then reports how many it suppressed', () => {
    for (let i = 0; i < 25; i++) auth.authenticate({}, '192.0.2.99', '/v1/x');
    auth.authenticate({}, '192.0.2.100', '/v1/x');
    assert.equal(events.filter((e) => e.details.client === '192.0.2.99').length, 10);
    assert.equal(events.filter((e) => e.details.client === '192.0.2.100').length, 1, 'other addresses unaffected');
    assert.equal(auth.metrics().denied.missing_key, 26, 'the metric counts every refusal');
    t += 60_000;
    auth.authenticate({}, '192.0.2.99', '/v1/x');
    assert.equal(events.at(-1)?.details.suppressed, 15);
  });
});
