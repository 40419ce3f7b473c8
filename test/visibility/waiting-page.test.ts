/**
 * SPEC §12 waiting page in a real headless Chromium (Debian's /usr/bin/chromium through
 * playwright-core): a service whose start fails shows the error, its last output lines and a
 * retry button instead of "starting" forever; reloading the page during the start backoff does
 * not start the service again (counted as `service_start` events); the retry button starts it
 * at once; once the start succeeds the page turns into the service itself without a reload by
 * the user. A screenshot of the failed page is written under the test's temp dir.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { CHROMIUM, chromiumUnavailable, requireOrSkip } from '../helpers/backends.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { failsUntilFlag, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';

const skip = requireOrSkip('Chromium', chromiumUnavailable());

const tmp = tempDir();
after(() => tmp.cleanup());

describe('waiting page in headless Chromium', { skip }, () => {
  let browser: Browser;
  let gw: TestGateway;
  let events: EventRecorder;
  const flag = tmp.path('model-present');

  before(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    const port = await freePort();
    gw = await startTestGateway({
      services: {
        // Long backoff: the whole test runs inside one.
        flaky: failsUntilFlag(
          port,
          flag,
          { waiting_page: true, start_backoff_ms: 300_000 },
          "echo 'loading weights from /models/x.gguf'; ",
        ),
      },
    });
    events = new EventRecorder(gw.ctx.bus);
  });
  after(async () => {
    await browser?.close();
    await gw?.close();
  });

  test('a failed start shows the error, the output and a retry button; reloads start nothing; retry starts; ready shows the app', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));

    const url = `${gw.url}/services/flaky/info`;
    await page.goto(url);
    await page.locator('#failed').waitFor({ state: 'visible' });
    assert.match((await page.locator('#error').textContent()) ?? '', /model file missing/);
    assert.match((await page.locator('#title').textContent()) ?? '', /flaky failed to start/);
    assert.match((await page.locator('#backoff').textContent()) ?? '', /will not be started again by a request for/);
    await page.locator('#log').filter({ hasText: 'model file missing' }).waitFor();
    assert.match((await page.locator('#log').textContent()) ?? '', /loading weights from \/models\/x\.gguf/);
    assert.equal(await page.locator('#retry').isEnabled(), true);
    await page.screenshot({ path: tmp.path('waiting-page-failed.png'), fullPage: true });
    const starts = () => events.of('service_start', 'flaky').length;
    assert.equal(starts(), 1, 'the first visit started it once');

    // Reloads during the backoff show the failure again and start nothing.
    for (let i = 0; i < 3; i++) {
      await page.reload();
      await page.locator('#failed').waitFor({ state: 'visible' });
    }
    assert.equal(starts(), 1, 'reloading never started it again');

    // Retry: an explicit start, even during the backoff. It fails again (still no model).
    await page.locator('#retry').click();
    await events.nth('service_start_failed', 2);
    assert.equal(starts(), 2);
    await page.locator('#failed').waitFor({ state: 'visible' });

    // Fixed; retry: the page follows the start and turns into the service.
    writeFileSync(flag, '');
    await page.locator('#retry').click();
    await page.waitForURL(url);
    await page.locator('body').filter({ hasText: '"pid"' }).waitFor();
    const info = JSON.parse((await page.locator('body').textContent()) ?? '{}') as { pid: number };
    assert.equal(typeof info.pid, 'number', 'the proxied app answered');
    assert.equal(starts(), 3);
    assert.deepEqual(problems, []);
    await context.close();
  });
});
