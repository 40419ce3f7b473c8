/**
 * Host and port doors (SPEC §10) with a real app that assumes it lives at "/" (test/fixtures/
 * root-app.mjs: a page, an /api fetch, a /ws WebSocket), launched cold by the process launcher
 * and driven in headless Chromium (Debian's /usr/bin/chromium via playwright-core). `*.localhost`
 * resolves to loopback in Chromium, so `app.localhost:<port>` reaches the gateway's main port.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { generateApiKey } from '../../src/auth/api-keys.ts';
import { hashPassword } from '../../src/auth/password.ts';
import { CHROMIUM, chromiumUnavailable, requireOrSkip } from '../helpers/backends.ts';
import { json, send } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { freePort } from '../helpers/net.ts';
import { startUpstream } from '../helpers/upstream.ts';

const skip = requireOrSkip('Chromium', chromiumUnavailable());
/** The app through the host door, after its cold start (for a human to look at). */
export const SCREENSHOT = '/tmp/hestia-host-door.png';
const ROOT_APP = fileURLToPath(new URL('../fixtures/root-app.mjs', import.meta.url));

async function appService(extra: Record<string, unknown> = {}) {
  const port = await freePort();
  return {
    base_url: `http://127.0.0.1:${port}`,
    health_url: `http://127.0.0.1:${port}/health`,
    health_interval_ms: 20,
    start_timeout_ms: 20_000,
    waiting_page: true,
    listen: 0,
    launcher: { type: 'process', command: [process.execPath, ROOT_APP, '--port', '{port}'], stop_timeout_ms: 3_000 },
    ...extra,
  };
}

describe('host and port doors in headless Chromium', { skip }, () => {
  let browser: Browser;
  before(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
  });
  after(async () => {
    await browser?.close();
  });

  async function expectApp(page: Page): Promise<void> {
    // The page's own /api fetch and /ws WebSocket, both at absolute paths.
    await page.locator('#api', { hasText: 'api ok' }).waitFor({ timeout: 30_000 });
    await page.locator('#ws', { hasText: 'ws ok' }).waitFor({ timeout: 30_000 });
  }

  test('auth off: cold start shows the waiting page, then the app works through the host door and the port door', async (t) => {
    // Readiness is the test's to give: the service counts as ready only once this gate answers
    // 200, so the waiting page is still there to be looked at (a quick app would otherwise be
    // ready, and the page reloading into it, before the title could be read). Once given, the
    // gate answers what the app's own /health answers, so ready still means the app listens.
    let ready = false;
    const app = await appService();
    const gate = await startUpstream((_req, res) => {
      if (!ready) return void res.writeHead(503).end();
      fetch(app.health_url).then(
        (r) => {
          void r.body?.cancel();
          res.writeHead(r.status).end();
        },
        () => res.writeHead(503).end(),
      );
    });
    t.after(() => gate.close());
    const gw: TestGateway = await startTestGateway({
      server: { service_domain: 'localhost' },
      services: { app: { ...app, health_url: `${gate.url}/health` } },
    });
    t.after(() => gw.close());
    const context = await browser.newContext();
    t.after(() => context.close());
    const page = await context.newPage();

    const hostUrl = `http://app.localhost:${gw.port}/`;
    const first = await page.goto(hostUrl);
    assert.equal(first?.status(), 200);
    assert.equal(await page.title(), 'app is starting', 'the cold service answers with the waiting page');
    ready = true;
    await expectApp(page); // the waiting page reloads itself into the app
    assert.equal(await page.title(), 'root app');
    await page.screenshot({ path: SCREENSHOT });

    const portUrl = gw.portDoorUrls().app;
    assert.ok(portUrl, 'the port door is listening');
    const viaPort = await page.goto(`${portUrl}/`);
    assert.equal(viaPort?.status(), 200);
    await expectApp(page);

    // Every request line names its door.
    const doors = new Set(
      gw
        .logs()
        .filter((l) => l.event_type === 'request')
        .map((l) => l.door),
    );
    assert.deepEqual([...doors].sort(), ['host', 'port']);
    const ws = gw.logs().find((l) => l.event_type === 'request' && l.websocket === true);
    assert.equal(ws?.service_id, 'app');

    // /.hestia/status on a door is that service's status.
    const status = json(await send(portUrl, '/.hestia/status'));
    assert.equal(status.serviceId, 'app');
    assert.equal(status.state, 'hot');
  });

  test('auth on: the browser is sent to /.hestia/login, logs in and uses the app; no cookie → 401; the upstream never sees the cookie', async (t) => {
    const password = 'correct horse';
    const key = generateApiKey();
    const gw = await startTestGateway({
      server: { service_domain: 'localhost' },
      auth: {
        enabled: true,
        api_keys: [{ name: 'k', sha256: key.sha256 }],
        dashboard: { username: 'admin', password_hash: await hashPassword(password, { N: 1024, r: 8, p: 1 }) },
      },
      services: { app: await appService() },
    });
    t.after(() => gw.close());
    const context = await browser.newContext();
    t.after(() => context.close());
    const page = await context.newPage();

    await page.goto(`http://app.localhost:${gw.port}/`);
    assert.equal(
      new URL(page.url()).pathname,
      '/.hestia/login',
      'a navigation without a session goes to the login page',
    );
    await page.fill('#username', 'admin');
    await page.fill('#password', password);
    await page.click('button[type=submit]');
    await expectApp(page);
    const cookies = await context.cookies(`http://app.localhost:${gw.port}/`);
    const session = cookies.find((c) => c.name === 'hestia_session');
    assert.ok(session, 'a session cookie for that origin');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');

    const base = `http://127.0.0.1:${gw.port}`;
    const host = { host: `app.localhost:${gw.port}` };
    // Without a cookie or key: 401 for an API call, the login page for a navigation.
    assert.equal((await send(base, '/api/x', { headers: host })).status, 401);
    const nav = await send(base, '/', { headers: { ...host, accept: 'text/html' } });
    assert.equal(nav.status, 303);
    assert.equal(nav.headers.location, '/.hestia/login?next=%2F');
    // The session cookie works from any client; a key works as on the path door.
    const withCookie = await send(base, '/api/x', { headers: { ...host, cookie: `hestia_session=${session.value}` } });
    assert.equal(withCookie.status, 200);
    const withKey = await send(base, '/api/seen', { headers: { ...host, 'x-api-key': key.key, cookie: 'app=1' } });
    assert.equal(withKey.status, 200);
    const seen = json(withKey).cookies as string[];
    assert.ok(seen.includes('app=1'), "the app's own cookies pass");
    assert.ok(!seen.some((c) => c.includes('hestia_session')), `the upstream saw Hestia's cookie: ${seen.join(' | ')}`);
    const portUrl = gw.portDoorUrls().app!;
    assert.equal((await send(portUrl, '/.hestia/status')).status, 401);
    assert.equal((await send(portUrl, '/.hestia/status', { headers: { 'x-api-key': key.key } })).status, 200);
  });
});
