/**
 * Logs (SPEC §9, issue 4): one JSON object per line; one line per proxied request with its
 * fields; lifecycle events with their own event_type; the level from HESTIA_LOG_LEVEL; and no
 * secret ever on a line — checked on a real `hestia serve` child's stdout, with secrets in the
 * config, the environment, request headers, cookies, query strings and a login form.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { after, afterEach, test } from 'node:test';
import { dump } from 'js-yaml';
import { generateApiKey } from '../../src/auth/api-keys.ts';
import { hashPassword } from '../../src/auth/password.ts';
import { HESTIA_BIN } from '../helpers/cli.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { fixtureService, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { startUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

type Line = Record<string, unknown>;

test('one line per proxied request with its fields; lifecycle events carry their event_type', async () => {
  const port = await freePort();
  const gw: TestGateway = await startTestGateway({
    services: {
      svc: fixtureService(port, []),
      idler: fixtureService(await freePort(), [], { idle_timeout_ms: 100 }),
      dead: { ...fixtureService(await freePort(), ['--boot-ms', '60000', '--exit-after-ms', '10']) },
    },
  });
  cleanups.push(() => gw.close());
  const rec = new EventRecorder(gw.ctx.bus);

  const cold = await fetch(`${gw.url}/services/svc/first?token=abc`, { headers: { 'x-request-id': 'req-cold-1' } });
  assert.equal(cold.status, 200);
  await cold.arrayBuffer();
  const hot = await fetch(`${gw.url}/services/svc/second`, { method: 'POST', body: '12345' });
  const hotId = hot.headers.get('x-request-id');
  await hot.arrayBuffer();
  await (await fetch(`${gw.url}/services/idler/`)).arrayBuffer();
  await rec.nth('idle_shutdown', 1);
  await rec.nth('service_stopped', 1);
  assert.equal((await fetch(`${gw.url}/services/dead/`)).status, 503);
  await (await fetch(`${gw.url}/services/nope/x`)).arrayBuffer();

  const text = gw.logText();
  for (const raw of text.split('\n').filter(Boolean)) {
    const l = JSON.parse(raw) as Line; // every line is one JSON object
    assert.equal(typeof l.time, 'string');
    assert.ok(['debug', 'info', 'warn', 'error'].includes(String(l.level)), raw);
    assert.equal(typeof l.msg, 'string');
  }
  const requests = gw.logs().filter((l) => l.event_type === 'request');
  const coldLine = requests.find((l) => l.request_id === 'req-cold-1');
  assert.ok(coldLine, 'the client X-Request-ID is the log line request_id');
  assert.equal(coldLine.service_id, 'svc');
  assert.equal(coldLine.method, 'GET');
  assert.equal(coldLine.route, '/services/{id}', 'normalised route');
  assert.equal(coldLine.status, 200);
  assert.equal(typeof coldLine.duration_ms, 'number');
  assert.equal(coldLine.bytes_in, 0);
  assert.ok((coldLine.bytes_out as number) > 0);
  assert.equal(typeof coldLine.cold_start_ms, 'number', 'it waited for a cold start');
  assert.ok(!JSON.stringify(coldLine).includes('first'), 'never the raw path');
  assert.ok(!JSON.stringify(coldLine).includes('token=abc'), 'never the query string');
  const hotLine = requests.find((l) => l.request_id === hotId);
  assert.ok(hotLine);
  assert.deepEqual([hotLine.method, hotLine.bytes_in, hotLine.cold_start_ms], ['POST', 5, null]);
  assert.equal(requests.filter((l) => l.request_id === 'req-cold-1').length, 1, 'exactly one line per request');
  const unknown = requests.find((l) => l.status === 404);
  assert.ok(unknown);
  assert.equal(unknown.service_id, null);
  assert.equal(unknown.error, 'HESTIA_UNKNOWN_SERVICE');

  const lifecycle = (type: string, id: string) =>
    gw.logs().filter((l) => l.event_type === type && l.service_id === id && l.msg !== undefined);
  for (const type of ['service_start', 'service_ready']) assert.equal(lifecycle(type, 'svc').length, 1, type);
  for (const type of ['idle_shutdown', 'service_stopped']) assert.equal(lifecycle(type, 'idler').length, 1, type);
  const failed = lifecycle('service_start_failed', 'dead')[0];
  assert.ok(failed);
  assert.equal(failed.level, 'warn');
  assert.equal(lifecycle('service_ready', 'svc')[0]!.level, 'info');
});

/** A `hestia serve` child; lines of stdout parsed as they come. */
interface Served {
  child: ChildProcess;
  out(): string;
  lines(): Line[];
  url: string | null;
  stop(): Promise<number | null>;
}

async function serve(env: Record<string, string>, waitFor: (l: Line) => boolean): Promise<Served> {
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('HESTIA_')) delete base[k];
  const child = spawn(process.execPath, [HESTIA_BIN, 'serve'], {
    env: { ...base, HESTIA_PORT: '0', HESTIA_HOST: '127.0.0.1', ...env },
    cwd: tmp.dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const served: Served = {
    child,
    out: () => out + err,
    // Complete lines only: a read can end in the middle of one.
    lines: () =>
      out
        .slice(0, out.lastIndexOf('\n') + 1)
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Line),
    url: null,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  cleanups.push(() => served.stop());
  const deadline = Date.now() + 20_000;
  for (;;) {
    const line = served.lines().find(waitFor);
    if (line) {
      served.url = typeof line.url === 'string' ? line.url : null;
      return served;
    }
    if (child.exitCode !== null) throw new Error(`hestia serve exited ${child.exitCode}: ${out}${err}`);
    if (Date.now() > deadline) throw new Error(`hestia serve did not log the expected line: ${out}${err}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('`hestia serve` logs JSON lines on stdout at the level of HESTIA_LOG_LEVEL', async () => {
  const cfg = tmp.path('level.yml');
  writeFileSync(cfg, dump({ services: { a: { base_url: 'http://127.0.0.1:9' } } }));
  const env = { HESTIA_CONFIG_PATH: cfg, HESTIA_DB_PATH: tmp.path('level.db') };

  const quiet = await serve({ ...env, HESTIA_LOG_LEVEL: 'warn' }, (l) => l.event_type === 'auth_disabled');
  assert.equal(await quiet.stop(), 0);
  const quietLines = quiet.lines();
  assert.ok(quietLines.length > 0);
  assert.ok(
    quietLines.every((l) => l.level === 'warn' || l.level === 'error'),
    quietLines.map((l) => l.level).join(','),
  );

  const loud = await serve({ ...env, HESTIA_LOG_LEVEL: 'debug' }, (l) => l.event_type === 'listening');
  assert.ok(loud.url);
  await (await fetch(`${loud.url}/services/a/x`)).arrayBuffer();
  await waitFor(() => loud.lines().some((l) => l.event_type === 'request'), { message: 'the request line on stdout' });
  assert.equal(await loud.stop(), 0);
  const levels = new Set(loud.lines().map((l) => l.level));
  assert.ok(levels.has('info'), 'info lines at debug level');
  const req = loud.lines().find((l) => l.event_type === 'request')!;
  assert.equal(req.service_id, 'a');
  assert.equal(req.status, 502);
});

test('secrets never reach the log: keys, Authorization, cookies, passwords, config secrets', async () => {
  const up = await startUpstream();
  cleanups.push(() => up.close());
  const key = generateApiKey();
  const password = 'pw-SECRET-horse-battery-staple';
  const secrets = {
    apiKey: key.key,
    wrongKey: 'hst_WRONGSECRETWRONGSECRETWRONGSECRETxx',
    upstreamBearer: 'upstream-BEARER-SECRET-123',
    cookie: 'cookie-SECRET-value-456',
    query: 'query-SECRET-789',
    semaphoreKey: 'sema-APIKEY-SECRET-000',
    semaphorePassword: 'sema-PASSWORD-SECRET-111',
    envPassword: 'env-SEMA-PASSWORD-SECRET-222',
    password,
    wrongPassword: 'wrong-PASSWORD-SECRET-333',
  };
  const cfg = tmp.path('secrets.yml');
  writeFileSync(
    cfg,
    dump({
      semaphore_base_url: 'http://127.0.0.1:9',
      semaphore_api_key: secrets.semaphoreKey,
      semaphore_password: secrets.semaphorePassword,
      semaphore_username: 'me',
      services: { a: { base_url: `http://127.0.0.1:${up.port}` } },
      auth: {
        enabled: true,
        api_keys: [{ name: 'k', sha256: key.sha256 }],
        dashboard: { username: 'admin', password_hash: await hashPassword(password, { N: 1024, r: 8, p: 1 }) },
      },
    }),
  );
  const gw = await serve(
    {
      HESTIA_CONFIG_PATH: cfg,
      HESTIA_DB_PATH: tmp.path('secrets.db'),
      HESTIA_LOG_LEVEL: 'debug',
      SEMAPHORE_PASSWORD: secrets.envPassword,
    },
    (l) => l.event_type === 'listening',
  );
  const url = gw.url!;
  const send = async (path: string, init: RequestInit = {}) => {
    const r = await fetch(`${url}${path}`, init);
    await r.arrayBuffer();
    return r.status;
  };
  assert.equal(await send('/services/a/x', { headers: { 'x-api-key': secrets.apiKey } }), 200);
  assert.equal(await send('/services/a/y', { headers: { authorization: `Bearer ${secrets.apiKey}` } }), 200);
  assert.equal(
    await send(`/services/a/z?api_key=${secrets.query}&token=${secrets.query}`, {
      headers: {
        'x-api-key': secrets.apiKey,
        authorization: `Bearer ${secrets.upstreamBearer}`,
        cookie: `session=${secrets.cookie}`,
      },
    }),
    200,
  );
  assert.equal(await send(`/services/a/x?key=${secrets.query}`, { headers: { 'x-api-key': secrets.wrongKey } }), 401);
  assert.equal(
    await send(`/v1/services?api_key=${secrets.query}`, { headers: { authorization: `Bearer ${secrets.wrongKey}` } }),
    401,
  );
  assert.equal(await send('/v1/metrics', { headers: { cookie: `hestia_session=${secrets.cookie}` } }), 401);
  const login = (pw: string) =>
    send('/ui/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url },
      body: new URLSearchParams({ username: 'admin', password: pw }).toString(),
      redirect: 'manual',
    });
  assert.equal(await login(secrets.wrongPassword), 401);
  assert.equal(await login(secrets.password), 303);
  // The upstream saw the Authorization that was not the gateway's key (it passed through).
  await waitFor(() => gw.lines().filter((l) => l.event_type === 'request').length >= 4, { message: 'request lines' });
  assert.equal(await gw.stop(), 0);

  const out = gw.out();
  assert.ok(out.includes('"event_type":"auth_denied"'), 'refusals were logged');
  assert.ok(out.includes('"event_type":"request"'), 'requests were logged');
  for (const [name, secret] of Object.entries(secrets)) assert.ok(!out.includes(secret), `${name} leaked into the log`);
});
