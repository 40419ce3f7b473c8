/**
 * SPEC §12 dashboard in a real headless Chromium (Debian's /usr/bin/chromium, playwright-core):
 * per service the last error, a link to the service's door, an output panel that follows the
 * service's live output, a Restart button that works, and events filterable by service and type
 * with runs of auth denials on one line. Screenshots go under the test's temp dir (and one copy
 * to /tmp/visibility-dashboard.png for people to look at).
 */
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { CHROMIUM, chromiumUnavailable, requireOrSkip } from '../helpers/backends.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { FIXTURE, fixtureService, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';

const skip = requireOrSkip('Chromium', chromiumUnavailable());
const tmp = tempDir();
after(() => tmp.cleanup());

describe('dashboard: visibility in headless Chromium', { skip }, () => {
  let browser: Browser;
  let gw: TestGateway;
  let events: EventRecorder;

  before(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    const port = await freePort();
    const brokenPort = await freePort();
    gw = await startTestGateway({
      services: {
        web: fixtureService(port, ['--stdout', 'model loaded in 1.2 s', '--stderr', 'warning: small GPU'], {
          idle_timeout_ms: 600_000,
        }),
        broken: {
          base_url: `http://127.0.0.1:${brokenPort}`,
          health_url: `http://127.0.0.1:${brokenPort}/health`,
          launcher: {
            type: 'process',
            command: `echo 'CUDA error: out of memory' >&2; exit 2; '${FIXTURE}'`,
          },
        },
      },
    });
    events = new EventRecorder(gw.ctx.bus);
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  test('last error, link, live output, restart, event filters and grouped auth denials', async () => {
    // Some history: a failed start, a hot service under a little load, a run of auth denials.
    assert.equal((await fetch(`${gw.url}/services/broken/`)).status, 503);
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const r = await fetch(`${gw.url}/services/web/hello`);
        await r.arrayBuffer();
      }),
    );
    for (let i = 0; i < 5; i++)
      gw.ctx.bus.publish('auth_denied', null, { reason: 'bad_key', client: '127.0.0.1', path: '/v1/services' });

    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    await page.goto(`${gw.url}/ui`);
    await page.waitForSelector('#live.on');

    // The last error, per service.
    assert.match(
      (await page.locator('tr[data-service="broken"] [data-field="lastError"]').textContent()) ?? '',
      /CUDA error: out of memory/,
    );
    assert.equal(await page.locator('tr[data-service="web"] [data-field="lastError"]').textContent(), '');
    // A link to the service's door.
    assert.equal(await page.locator('tr[data-service="web"] th a').getAttribute('href'), '/services/web/');

    // Auth denials: one line with a count.
    const denied = page.locator('#events li[data-type="auth_denied"]');
    assert.equal(await denied.count(), 1);
    assert.match((await denied.textContent()) ?? '', /×5/);
    gw.ctx.bus.publish('auth_denied', null, { reason: 'bad_key', client: '127.0.0.1', path: '/v1/services' });
    await page.locator('#events li[data-type="auth_denied"] .count', { hasText: '×6' }).waitFor();
    assert.equal(await denied.count(), 1, 'a live denial joins the line');

    // Filters: by service, then by type.
    await page.selectOption('#filter-service', 'broken');
    const shown = () =>
      page
        .locator('#events li:visible')
        .evaluateAll((lis) => lis.map((li) => (li as unknown as { dataset: Record<string, string> }).dataset.service));
    assert.ok((await shown()).length > 0);
    assert.ok((await shown()).every((s) => s === 'broken'));
    await page.selectOption('#filter-service', '');
    await page.selectOption('#filter-type', 'service_ready');
    const types = await page
      .locator('#events li:visible')
      .evaluateAll((lis) => lis.map((li) => (li as unknown as { dataset: Record<string, string> }).dataset.type));
    assert.deepEqual(types, ['service_ready']);
    await page.selectOption('#filter-type', '');

    // Output panel: follows web's output.
    await page.getByRole('button', { name: 'Output of web' }).click();
    await page.locator('#log', { hasText: 'model loaded in 1.2 s' }).waitFor();
    assert.match((await page.locator('#log .stderr').first().textContent()) ?? '', /warning: small GPU/);
    const before = await page.locator('#log .line').count();

    // Restart: a stop then a start; the new run's output arrives live in the panel.
    await page.getByRole('button', { name: 'Restart web' }).click();
    await events.nth('service_ready', 2);
    assert.equal(events.of('service_stop', 'web').length, 1);
    await page.waitForFunction(
      (n) =>
        (
          globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }
        ).document.querySelectorAll('#log .line').length >=
        n + 2,
      before,
    );
    await page.locator('tr[data-service="web"][data-state="hot"]').waitFor();

    const shot = tmp.path('dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    copyFileSync(shot, '/tmp/visibility-dashboard.png');
    assert.deepEqual(problems, []);
    await context.close();
  });
});
