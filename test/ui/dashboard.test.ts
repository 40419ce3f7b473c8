/**
 * The dashboard in a real headless Chromium (Debian's /usr/bin/chromium, driven by
 * playwright-core; never a downloaded browser): the page shows a service change from cold to
 * hot without a reload, and its Start/Stop buttons work — with auth off, and with auth on
 * through a real login (session cookie + the same-origin Origin header fetch() sends).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { generateApiKey } from '../../src/auth/api-keys.ts';
import { hashPassword } from '../../src/auth/password.ts';
import { CHROMIUM, chromiumUnavailable, requireOrSkip } from '../helpers/backends.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { fixtureService, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';

const skip = requireOrSkip('Chromium', chromiumUnavailable());
/** Where the screenshot of the dashboard goes (for a human to look at). */
const SCREENSHOT = '/tmp/hestia-dashboard.png';

const tmp = tempDir();
after(() => tmp.cleanup());

describe('dashboard in headless Chromium', { skip }, () => {
  let browser: Browser;
  before(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-quic',
        '--no-first-run',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  after(async () => {
    await browser?.close();
  });

  /** A page that records console errors, page errors and CSP violations. */
  async function openPage(): Promise<{ page: Page; problems: string[]; close(): Promise<void> }> {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    return { page, problems, close: () => context.close() };
  }

  const stateOf = (page: Page, id: string) =>
    page.locator(`tr[data-service="${id}"] [data-field="state"]`).textContent();
  const waitState = (page: Page, id: string, state: string) =>
    page.waitForSelector(`tr[data-service="${id}"][data-state="${state}"]`, { timeout: 20_000 });

  test('a service goes from cold to hot on screen without a reload; Stop and Start buttons work', async (t) => {
    const port = await freePort();
    const gw: TestGateway = await startTestGateway({
      services: {
        web: fixtureService(port, [], { idle_timeout_ms: 600_000 }),
        'big-model': { base_url: 'http://127.0.0.1:9' },
      },
    });
    t.after(() => gw.close());
    const rec = new EventRecorder(gw.ctx.bus);
    const { page, problems, close } = await openPage();
    t.after(close);

    const res = await page.goto(`${gw.url}/ui`);
    assert.equal(res?.status(), 200);
    const csp = res?.headers()['content-security-policy'] ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'/);
    // Server-rendered, a real table with a header row and labelled buttons.
    assert.equal(await page.locator('table#services thead th[scope="col"]').count(), 11);
    assert.equal(await stateOf(page, 'web'), 'cold');
    await page.waitForSelector('#live.on');
    // A marker that a reload would wipe.
    await page.evaluate(() => {
      (globalThis as unknown as { marker: number }).marker = 42;
    });

    // A real client request starts the service; the page follows the event stream.
    const r = await fetch(`${gw.url}/services/web/hello`);
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    await waitState(page, 'web', 'hot');
    assert.equal(await stateOf(page, 'web'), 'hot');
    await page.waitForSelector('#events li >> text=service_ready');
    // The live line (app.js) says where the start went: launch, then the service's own start-up.
    assert.match(
      (await page.locator('#events li', { hasText: 'service_ready' }).first().textContent()) ?? '',
      /ready after \d+\.\d s: launch \d+ ms, its own start-up \d+(\.\d)? (ms|s)/,
    );
    assert.match((await page.locator('tr[data-service="web"] [data-field="lastUsed"]').textContent()) ?? '', /ago$/);
    // In-flight counts and the idle countdown change without events: the page polls for them.
    await page
      .locator('tr[data-service="web"] [data-field="idle"]', { hasText: /^\d+ min \d+ s$/ })
      .waitFor({ timeout: 20_000 });
    assert.equal(await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker), 42, 'no reload');
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // Stop with the button.
    const stop = page.getByRole('button', { name: 'Stop web', exact: true });
    assert.equal(await stop.isEnabled(), true);
    assert.equal(
      await page.getByRole('button', { name: 'Start web', exact: true }).isEnabled(),
      false,
      'hot: no Start',
    );
    await stop.click();
    await waitState(page, 'web', 'cold');
    await rec.nth('service_stopped', 1);
    assert.equal(gw.ctx.services.get('web')?.state, 'cold');
    assert.equal(rec.of('service_stop', 'web')[0]?.details.cause, 'api_stop');

    // And start it again.
    await page.getByRole('button', { name: 'Start web', exact: true }).click();
    await waitState(page, 'web', 'hot');
    await rec.nth('service_ready', 2);
    assert.equal(rec.of('service_start', 'web')[1]?.details.cause, 'api');
    assert.equal(
      await page.evaluate(() => (globalThis as unknown as { marker?: number }).marker),
      42,
      'still no reload',
    );
    assert.deepEqual(problems, [], 'no console errors and no CSP violations');
  });

  test('lifecycle policies on screen: dependencies, an active keep-warm window, a paused service', async (t) => {
    const [webPort, apiPort, cachePort] = [await freePort(), await freePort(), await freePort()];
    const gw = await startTestGateway({
      services: {
        // Warm all day (so the window is active now), and needing api first.
        web: fixtureService(webPort, [], {
          idle_timeout_ms: 600_000,
          keep_warm: ['00:00-24:00'],
          depends_on: ['api'],
        }),
        api: fixtureService(apiPort, [], { idle_timeout_ms: 600_000 }),
        cache: fixtureService(cachePort, [], { idle_timeout_ms: 300, stop_mode: 'pause' }),
      },
    });
    t.after(() => gw.close());
    const rec = new EventRecorder(gw.ctx.bus);
    const { page, problems, close } = await openPage();
    t.after(close);

    await page.goto(`${gw.url}/ui`);
    await page.waitForSelector('#live.on');
    const policy = (id: string) => page.locator(`tr[data-service="${id}"] [data-field="policy"]`);
    // The window starts web (api first); the row says until when it is kept warm and what it needs.
    await waitState(page, 'web', 'hot');
    await policy('web')
      .filter({ hasText: /keep-warm until/ })
      .waitFor({ timeout: 20_000 });
    const webPolicy = (await policy('web').textContent()) ?? '';
    assert.match(webPolicy, /keep-warm until 00:00/);
    assert.match(webPolicy, /needs api/);
    assert.doesNotMatch(webPolicy, /kept up/, 'the active window already says why');
    assert.match((await policy('cache').textContent()) ?? '', /pauses when idle/);
    // api has no policies of its own: it is up because web needs it.
    assert.equal(await policy('api').textContent(), "kept up: dependent 'web' is hot");

    // cache: a request starts it, the idle stop pauses it, and the page shows "paused" live.
    const r = await fetch(`${gw.url}/services/cache/x`);
    assert.equal(r.status, 200);
    await r.arrayBuffer();
    await rec.nth('service_paused', 1);
    await page
      .locator('tr[data-service="cache"] [data-field="state"]', { hasText: 'paused' })
      .waitFor({ timeout: 20_000 });
    assert.equal(await page.locator('#filter-type option', { hasText: 'service_paused' }).count(), 1);
    await page.screenshot({ path: '/tmp/hestia-dashboard-policies.png', fullPage: true });
    assert.deepEqual(problems, []);
  });

  test('with auth on: log in, then the Start button works through the session (CSRF Origin check)', async (t) => {
    const port = await freePort();
    const password = 'dashboard password for the test';
    const gw = await startTestGateway({
      services: { web: fixtureService(port, [], { idle_timeout_ms: 600_000 }) },
      auth: {
        enabled: true,
        api_keys: [{ name: 'k', sha256: generateApiKey().sha256 }],
        dashboard: { username: 'admin', password_hash: await hashPassword(password, { N: 1024, r: 8, p: 1 }) },
      },
    });
    t.after(() => gw.close());
    const rec = new EventRecorder(gw.ctx.bus);
    const { page, problems, close } = await openPage();
    t.after(close);

    await page.goto(`${gw.url}/ui`);
    assert.match(page.url(), /\/ui\/login\?next=%2Fui$/, 'sent to the login page');
    await page.getByLabel('Username').fill('admin');
    await page.getByLabel('Password').fill(password);
    await Promise.all([page.waitForURL(`${gw.url}/ui`), page.getByRole('button', { name: 'Log in' }).click()]);
    await page.waitForSelector('#live.on');
    assert.match((await page.locator('header').textContent()) ?? '', /Logged in as admin/);
    assert.equal(await stateOf(page, 'web'), 'cold');
    // The one refusal so far: the first visit, without a session, sent to the login page.
    assert.deepEqual(
      rec.of('auth_denied').map((e) => [e.details.path, e.details.reason]),
      [['/ui', 'missing_key']],
    );

    await page.getByRole('button', { name: 'Start web', exact: true }).click();
    await waitState(page, 'web', 'hot');
    await rec.nth('service_ready', 1);
    assert.equal(gw.ctx.services.get('web')?.state, 'hot');
    assert.equal(rec.of('auth_denied').length, 1, 'nothing refused after the login');
    assert.equal(await page.locator('#notice').isHidden(), true);
    assert.deepEqual(problems, []);
  });
});
