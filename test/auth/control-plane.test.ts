/**
 * Auth through a real gateway on the control plane: /v1, /healthz, /metrics, /ui and the login
 * flow, with a real cookie jar and a real SQLite key database shared with the real `hestia` bin.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateApiKey } from '../../src/auth/api-keys.ts';
import { hashPassword } from '../../src/auth/password.ts';
import { runCli } from '../helpers/cli.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const dir = mkdtempSync(join(tmpdir(), 'hestia-auth-cp-'));
const dbPath = join(dir, 'hestia.db');
const cfgKey = generateApiKey();
const PASSWORD = 'open sesame, but longer';
let gw: TestGateway;
let baseConfig: Record<string, unknown>;

before(async () => {
  baseConfig = {
    // trust_proxy: tests that look for one auth_denied line send their own X-Forwarded-For, so
    // the per-address event throttle (10 a minute) is not spent by the other tests' refusals.
    server: { db_path: dbPath, trust_proxy: true },
    services: { a: { base_url: 'http://127.0.0.1:9' } },
    auth: {
      enabled: true,
      api_keys: [{ name: 'cfg', sha256: cfgKey.sha256 }],
      dashboard: { username: 'admin', password_hash: await hashPassword(PASSWORD, { N: 1024, r: 8, p: 1 }) },
    },
  };
  gw = await startTestGateway(baseConfig);
});
after(async () => {
  await gw.close();
  rmSync(dir, { recursive: true, force: true });
});

async function json(res: Response): Promise<Record<string, unknown>> {
  return (await res.json()) as Record<string, unknown>;
}

/** A cookie jar: keeps what Set-Cookie says (Max-Age=0 deletes), sends it back as Cookie. */
class CookieJar {
  readonly cookies = new Map<string, { value: string; attrs: string }>();
  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq);
      if (/(^|;\s*)max-age=0(;|$)/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, { value: pair!.slice(eq + 1), attrs: attrs.join('; ') });
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v.value}`).join('; ');
  }
  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) headers.set('cookie', this.header());
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    this.store(res);
    return res;
  }
}

describe('the control plane with auth enabled', () => {
  test('/v1 without a key is 401 in the error envelope, with an auth_denied event in the log', async () => {
    const res = await fetch(`${gw.url}/v1/services?x=1`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="hestia"');
    const body = await json(res);
    assert.equal(body.code, 'HESTIA_UNAUTHORIZED');
    assert.equal(body.src, 'hestia');
    const line = gw.logs().find((l) => l.event_type === 'auth_denied' && l.path === '/v1/services');
    assert.equal(line?.reason, 'missing_key');
    assert.equal(line?.client, '127.0.0.1');
  });

  test('a wrong key is 401; a good key in either header passes the gate (404: no such route yet)', async () => {
    assert.equal((await fetch(`${gw.url}/v1/nope`, { headers: { 'x-api-key': 'hst_nope' } })).status, 401);
    const a = await fetch(`${gw.url}/v1/nope`, { headers: { 'x-api-key': cfgKey.key } });
    assert.equal((await json(a)).code, 'HESTIA_NOT_FOUND');
    const b = await fetch(`${gw.url}/v1/nope`, { headers: { authorization: `Bearer ${cfgKey.key}` } });
    assert.equal((await json(b)).code, 'HESTIA_NOT_FOUND');
    assert.ok(!gw.logText().includes(cfgKey.key) && !gw.logText().includes('hst_nope'), 'no key in the log');
  });

  test('default-deny: unknown paths and odd spellings need a key too', async () => {
    for (const p of ['/V1/services', '/ui/../v1/services', '/nothing', '/healthz/']) {
      assert.equal((await fetch(`${gw.url}${p}`)).status, 401, p);
    }
  });

  test('/healthz is open and /metrics protected by default', async () => {
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${gw.url}/metrics`)).status, 401);
    assert.notEqual((await fetch(`${gw.url}/metrics`, { headers: { 'x-api-key': cfgKey.key } })).status, 401);
  });

  test('keys created and revoked by the CLI take effect on the running gateway (same SQLite file)', async () => {
    const cfgFile = join(dir, 'cli.yml');
    writeFileSync(cfgFile, `server:\n  db_path: ${dbPath}\n`);
    const env = { HESTIA_CONFIG_PATH: cfgFile, HESTIA_DB_PATH: undefined };
    const created = await runCli(['keys', 'create', 'script'], { env });
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim();
    const ok = await fetch(`${gw.url}/v1/nope`, { headers: { 'x-api-key': key } });
    assert.equal(ok.status, 404, 'passed auth');
    const listed = await runCli(['keys', 'list', '--json'], { env });
    const row = (JSON.parse(listed.stdout) as Array<{ name: string; last_used_at: string | null }>).find(
      (k) => k.name === 'script',
    );
    assert.ok(row?.last_used_at, 'last-used time recorded');
    assert.equal((await runCli(['keys', 'revoke', 'script'], { env })).code, 0);
    const revoked = await fetch(`${gw.url}/v1/nope`, {
      headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': '198.51.100.20' },
    });
    assert.equal(revoked.status, 401);
    assert.ok(
      gw.logs().some((l) => l.event_type === 'auth_denied' && l.reason === 'revoked_key' && l.keyName === 'script'),
    );
    assert.ok(!gw.logText().includes(key), 'the key never reaches the log');
  });
});

describe('dashboard login (real cookie jar)', () => {
  test('GET /ui without a session redirects a browser to the login page; an API client gets 401', async () => {
    const nav = await fetch(`${gw.url}/ui`, { headers: { accept: 'text/html' }, redirect: 'manual' });
    assert.equal(nav.status, 303);
    assert.equal(nav.headers.get('location'), '/ui/login?next=%2Fui');
    const api = await fetch(`${gw.url}/ui/events`);
    assert.equal(api.status, 401);
    const login = await fetch(`${gw.url}/ui/login`);
    assert.equal(login.status, 200);
    assert.match(await login.text(), /<form method="post" action="\/ui\/login">/);
    assert.match(login.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  });

  test('form login sets an HttpOnly SameSite=Strict cookie; the session opens /ui and /v1; logout ends it', async () => {
    const jar = new CookieJar();
    const res = await jar.fetch(`${gw.url}/ui/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: gw.url },
      body: new URLSearchParams({ username: 'admin', password: PASSWORD, next: '/ui' }).toString(),
    });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), '/ui');
    const cookie = jar.cookies.get('hestia_session');
    assert.ok(cookie, 'session cookie set');
    assert.match(cookie.attrs, /HttpOnly/);
    assert.match(cookie.attrs, /SameSite=Strict/);
    assert.match(cookie.attrs, /Path=\//);
    assert.doesNotMatch(cookie.attrs, /Secure/, 'plain http: no Secure');

    const ui = await jar.fetch(`${gw.url}/ui`, { headers: { accept: 'text/html' } });
    assert.equal(ui.status, 200);
    assert.match(await ui.text(), /Logged in as admin/);
    // GET needs no origin proof; a POST from our own origin passes; a foreign origin or none is refused.
    assert.equal((await jar.fetch(`${gw.url}/v1/nope`)).status, 404);
    const same = await jar.fetch(`${gw.url}/v1/services/a/start`, { method: 'POST', headers: { origin: gw.url } });
    // 202 (start begun) and 409 (already starting/hot): both mean it passed auth and the CSRF check.
    assert.equal(same.status, 202, 'passed auth and the CSRF check');
    const sfs = await jar.fetch(`${gw.url}/v1/services/a/start`, {
      method: 'POST',
      headers: { 'sec-fetch-site': 'same-origin' },
    });
    assert.equal(sfs.status, 409);
    const refused: Array<Record<string, string>> = [
      { origin: 'http://evil.example' },
      { origin: 'null' },
      {},
      { 'sec-fetch-site': 'same-site' },
    ];
    for (const headers of refused) {
      const r = await jar.fetch(`${gw.url}/v1/services/a/start`, {
        method: 'POST',
        headers: { ...headers, 'x-forwarded-for': '198.51.100.21' },
      });
      assert.equal(r.status, 403, JSON.stringify(headers));
      assert.equal((await json(r)).code, 'HESTIA_FORBIDDEN');
    }
    assert.ok(gw.logs().some((l) => l.event_type === 'auth_denied' && l.reason === 'csrf' && l.method === 'POST'));

    const sessionValue = cookie.value;
    const out = await jar.fetch(`${gw.url}/ui/logout`, { method: 'POST', headers: { origin: gw.url } });
    assert.equal(out.status, 204);
    assert.equal(jar.cookies.size, 0, 'cookie deleted');
    const replay = await fetch(`${gw.url}/v1/nope`, { headers: { cookie: `hestia_session=${sessionValue}` } });
    assert.equal(replay.status, 401, 'the old session id is dead on the server too');
    assert.ok(!gw.logText().includes(sessionValue), 'the session id never reaches the log');
    assert.ok(!gw.logText().includes(PASSWORD), 'nor the password');
  });

  test('JSON login works; the cookie is Secure when the request came via https (X-Forwarded-Proto)', async () => {
    const res = await fetch(`${gw.url}/ui/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' },
      body: JSON.stringify({ username: 'admin', password: PASSWORD }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.getSetCookie()[0] ?? '', /; Secure/);
  });

  test('open redirects are refused: next must be a /ui path', async () => {
    const jar = new CookieJar();
    for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example', '/v1/x']) {
      const res = await jar.fetch(`${gw.url}/ui/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ username: 'admin', password: PASSWORD, next }).toString(),
      });
      assert.equal(res.headers.get('location'), '/ui', next);
    }
  });

  test('a cross-origin login is refused', async () => {
    const res = await fetch(`${gw.url}/ui/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: 'http://evil.example' },
      body: JSON.stringify({ username: 'admin', password: PASSWORD }),
    });
    assert.equal(res.status, 403);
    assert.equal(res.headers.getSetCookie().length, 0);
  });

  test('logins being checked are capped per address as well as in total: one client cannot lock the owner out', async () => {
    const at = (xff: string) =>
      fetch(`${gw.url}/ui/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': xff },
        body: JSON.stringify({ username: 'admin', password: PASSWORD }),
      });
    const gate = gw.ctx.auth.loginGate;
    // A login from 203.0.113.60 is being checked (its scrypt still running).
    const busy = gate.enter('203.0.113.60');
    assert.ok(busy.ok);
    try {
      const same = await at('203.0.113.60');
      assert.equal(same.status, 429);
      const body = await json(same);
      assert.equal(body.code, 'HESTIA_TOO_MANY_REQUESTS');
      assert.match(String(body.error), /from this address/);
      assert.equal(same.headers.get('retry-after'), '1');
      assert.equal((await at('203.0.113.61')).status, 200, 'another address logs in meanwhile');
      // The global cap still holds when many addresses are busy.
      const others = ['203.0.113.62', '203.0.113.63', '203.0.113.64'].map((a) => gate.enter(a));
      try {
        assert.equal(gate.inUse(), gate.maxTotal);
        const full = await at('203.0.113.65');
        assert.equal(full.status, 429);
        assert.match(String((await json(full)).error), /too many logins at once/);
      } finally {
        for (const o of others) if (o.ok) o.leave();
      }
    } finally {
      busy.leave();
    }
    assert.equal(gate.inUse(), 0);
    assert.equal((await at('203.0.113.60')).status, 200, 'free again once the check ends');
  });

  test('failed logins are rate-limited per address: 401 five times, then blocked with 429 even for the right password', async () => {
    // A separate gateway that trusts X-Forwarded-For, so this test's address is its own.
    const g2 = await startTestGateway({ ...baseConfig, server: { db_path: dbPath, trust_proxy: true } });
    try {
      const url = g2.url;
      const at = (password: string, xff: string) =>
        fetch(`${url}/ui/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-forwarded-for': xff },
          body: JSON.stringify({ username: 'admin', password }),
        });
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await at(`wrong-${i}`, '203.0.113.50')).status);
      assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401]);
      const blocked = await at(PASSWORD, '203.0.113.50');
      assert.equal(blocked.status, 429);
      assert.ok(Number(blocked.headers.get('retry-after')) >= 1);
      assert.equal((await json(blocked)).code, 'HESTIA_TOO_MANY_REQUESTS');
      assert.equal((await at(PASSWORD, '203.0.113.51')).status, 200, 'another address is not affected');
      assert.ok(g2.ctx.auth.metrics().blockedAddresses >= 1);
      assert.ok(g2.ctx.auth.metrics().denied.bad_login >= 6);
      assert.ok(g2.logs().some((l) => l.event_type === 'auth_denied' && l.reason === 'bad_login' && l.blockedForMs));
      assert.ok(!g2.logText().includes('wrong-0'));
    } finally {
      await g2.close();
    }
  });
});

describe('auth disabled (the default)', () => {
  test('one clear warning at start; /v1 and /ui need nothing', async () => {
    const g = await startTestGateway({ services: {} });
    try {
      const warnings = g.logs().filter((l) => l.event_type === 'auth_disabled');
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]!.level, 'warn');
      assert.match(String(warnings[0]!.msg), /anyone who can reach .* can use every service/);
      assert.equal((await fetch(`${g.url}/v1/nope`)).status, 404);
      assert.equal((await fetch(`${g.url}/ui`)).status, 200);
      const login = await fetch(`${g.url}/ui/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: 'x' }),
      });
      assert.equal(login.status, 404, 'no sessions are handed out while auth is off');
      assert.equal(login.headers.getSetCookie().length, 0);
    } finally {
      await g.close();
    }
  });
});
