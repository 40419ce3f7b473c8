/**
 * The dashboard's live view in a real headless Chromium (Debian's /usr/bin/chromium,
 * playwright-core): per-service charts drawn by uPlot from `GET /v1/dashboard` (requests, errors,
 * p50/p95), cold-start time, the machines panel (capacity bars, allocation, an agent's live CPU,
 * memory and GPU memory), the output panel following a service, Restart; then the gateway is
 * stopped and started again on the same port with the page open: no page error, and the page
 * recovers (live again, new events arrive). A second test measures the page with 200 services.
 * Screenshots go under the test's temp dir, and copies to /tmp/dashboard-*.png.
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type Gateway, startGateway } from '../../src/main.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { type ChildAgent, spawnAgent } from '../helpers/agent.ts';
import { CHROMIUM, chromiumUnavailable, requireOrSkip } from '../helpers/backends.ts';
import { EventRecorder } from '../helpers/events.ts';
import { configFrom, startTestGateway } from '../helpers/gateway.ts';
import { fixtureService, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const skip = requireOrSkip('Chromium', chromiumUnavailable());
const tmp = tempDir();
after(() => tmp.cleanup());
const SAMPLE = fileURLToPath(new URL('../fixtures/nvidia-smi-sample.csv', import.meta.url));
const TOKEN = 'dashboard-agent-token-0123456789';

async function openPage(browser: Browser, width = 1500, height = 1100) {
  const context = await browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // A refused connection while the gateway is down is logged by Chromium itself
    // (net::ERR_CONNECTION_REFUSED); it is not a script error.
    if (m.type() === 'error' && !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(m.text()))
      problems.push(`console: ${m.text()}`);
  });
  return { page, problems, close: () => context.close() };
}

async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  const file = join(tmp.dir, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  copyFileSync(file, `/tmp/dashboard-${name}.png`);
}

/** Buckets with traffic the page holds for a service (set by app.js on the traffic cell). */
async function bucketsOf(page: Page, id: string): Promise<number> {
  return Number(
    (await page.locator(`tr[data-service="${id}"] [data-field="traffic"]`).getAttribute('data-buckets')) ?? 0,
  );
}

describe('dashboard: charts, machines, output, restart, gateway restart', { skip }, () => {
  let browser: Browser;
  let agent: ChildAgent;
  let api: Upstream;

  before(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    });
    // An agent with a stand-in nvidia-smi that prints a recorded two-GPU sample.
    const bin = join(tmp.dir, 'fakebin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'nvidia-smi'), `#!/bin/sh\ncat ${JSON.stringify(SAMPLE)}\n`);
    chmodSync(join(bin, 'nvidia-smi'), 0o755);
    const stateDir = join(tmp.dir, 'agent-state');
    mkdirSync(stateDir, { recursive: true });
    agent = await spawnAgent({
      port: await freePort(),
      stateDir,
      token: TOKEN,
      env: { PATH: `${bin}:${process.env.PATH}` },
    });
    // An API that fails one request in four (5xx) and answers the rest.
    let n = 0;
    api = await startUpstream((_req, res: ServerResponse) => {
      n++;
      res.writeHead(n % 4 === 0 ? 500 : 200, { 'content-type': 'text/plain' });
      res.end('ok');
    });
  });
  after(async () => {
    await browser?.close();
    await agent?.stop();
    await api?.close();
  });

  test('charts draw from real traffic; machines show capacity and live resources; output; restart; the page survives a gateway restart', async (t) => {
    const webPort = await freePort();
    const gwPort = await freePort();
    const yaml = {
      machines: {
        local: { host: '127.0.0.1', capacity: { gpu_mem_mb: 24000 } },
        gpu: { host: '127.0.0.1', agent: { url: agent.url, token: TOKEN } },
      },
      services: {
        web: fixtureService(webPort, ['--stdout', 'model loaded in 1.2 s'], {
          idle_timeout_ms: 600_000,
          machines: ['local'],
          requires: { gpu_mem_mb: 9000 },
          models: ['qwen2.5:7b'],
        }),
        api: { base_url: api.url },
      },
    };
    const config = configFrom(yaml);
    config.server.db_path = join(tmp.dir, 'gateway.db');
    const start = (): Promise<Gateway> =>
      startGateway({ config, logger: createLogger({ level: 'error' }), host: '127.0.0.1', port: gwPort });
    let gw = await start();
    t.after(() => gw.close());
    const rec = new EventRecorder(gw.ctx.bus);

    // Load: a cold start of web, then traffic on both, one in four of api's answers a 500.
    const hit = async (path: string) => (await fetch(`${gw.url}${path}`)).arrayBuffer();
    await hit('/services/web/hello');
    await Promise.all(Array.from({ length: 30 }, () => hit('/services/web/x')));
    await Promise.all(Array.from({ length: 40 }, () => hit('/services/api/y')));

    const { page, problems, close } = await openPage(browser);
    t.after(close);
    await page.goto(`${gw.url}/ui`);
    await page.waitForSelector('#live.on');

    // Charts: uPlot canvases in web's and api's rows, fed with the buckets that had traffic.
    for (const id of ['web', 'api']) {
      await page.locator(`tr[data-service="${id}"] [data-field="traffic"] canvas`).waitFor();
      await page.locator(`tr[data-service="${id}"] [data-field="latency"] canvas`).waitFor();
      assert.ok((await bucketsOf(page, id)) >= 1, `${id}: the chart has data`);
      const box = await page.locator(`tr[data-service="${id}"] [data-field="traffic"] canvas`).boundingBox();
      assert.ok(box !== null && box.width > 50 && box.height > 10, `${id}: the chart is drawn with a size`);
    }
    assert.match(
      (await page.locator('tr[data-service="api"] [data-field="traffic"] .figure').textContent()) ?? '',
      /\/(s|min), 25 % err/,
      'api: rate and error rate of the last minute',
    );
    assert.match(
      (await page.locator('tr[data-service="web"] [data-field="latency"] .figure').textContent()) ?? '',
      /ms|s \//,
    );
    // Cold start: web's last / typical.
    assert.match(
      (await page.locator('tr[data-service="web"] [data-field="coldStart"]').textContent()) ?? '',
      /^\d.* \/ \d/,
    );
    // Models and the door link.
    assert.match((await page.locator('tr[data-service="web"] .models').textContent()) ?? '', /qwen2\.5:7b/);
    assert.equal(await page.locator('tr[data-service="web"] th a').first().getAttribute('href'), '/services/web/');

    // Machines: local's capacity bar holds web's 9000 of 24000; gpu's live resources from its agent.
    const box = page.locator('article.machine[data-machine="local"]');
    const meter = box.locator('[data-resource="capacity:gpu_mem_mb"] meter');
    assert.equal(await meter.getAttribute('max'), '24000');
    assert.equal(await meter.getAttribute('value'), '9000');
    assert.match((await box.locator('.allocation').textContent()) ?? '', /web/);
    const gpu = page.locator('article.machine[data-machine="gpu"]');
    await gpu.locator('[data-resource="gpu1"] meter').waitFor();
    assert.equal(await gpu.locator('[data-resource="gpu1"] meter').getAttribute('max'), '81920');
    assert.equal(await gpu.locator('[data-resource="cpu"] meter').count(), 1);
    assert.equal(await gpu.locator('[data-resource="memory"] meter').count(), 1);
    // The agent's event channel: nothing of ours runs there, so it is not held open.
    assert.match((await gpu.locator('.agent').textContent()) ?? '', /^agent (idle|connecting|connected)$/);
    assert.equal(await box.locator('.agent').count(), 0, 'local has no agent');

    // Output: the panel follows web; a restart's new run prints its line again, live.
    await page.getByRole('button', { name: 'Output of web' }).click();
    await page.locator('#log', { hasText: 'model loaded in 1.2 s' }).waitFor();
    const linesBefore = await page.locator('#log .line', { hasText: 'model loaded' }).count();
    await shot(page, 'live');
    await page.getByRole('button', { name: 'Restart web' }).click();
    await waitFor(() => rec.of('service_ready', 'web').length === 2, { message: "web's second ready" });
    assert.equal(rec.of('service_start', 'web').length, 2);
    await page.locator('#log .line', { hasText: 'model loaded' }).nth(linesBefore).waitFor();
    await page.locator('#events li[data-type="service_start"][data-service="web"]').first().waitFor();

    // The gateway stops and starts again on the same port, with the page open.
    await gw.close();
    await page.waitForSelector('#live.off');
    gw = await start();
    await page.waitForSelector('#live.on', { timeout: 30_000 });
    // It recovers: a new event reaches the events list, polls bring fresh data, the log panel reconnects.
    const restartedAt = Date.now();
    await hit('/services/web/after-restart');
    await page.locator('#events li[data-type="service_ready"][data-service="web"]').nth(2).waitFor({ timeout: 30_000 });
    await page.locator('#output-service', { hasText: /^of web$/ }).waitFor({ timeout: 30_000 });
    await page.locator('#log', { hasText: 'model loaded in 1.2 s' }).waitFor();
    assert.ok(Date.now() >= restartedAt);
    // No event twice after the reconnect (the stream resumes from the last id it delivered).
    const ids = await page
      .locator('#events li')
      .evaluateAll((lis) => lis.map((li) => (li as unknown as { dataset: Record<string, string> }).dataset.id));
    assert.equal(new Set(ids).size, ids.length, `no duplicate events: ${ids.join(',')}`);
    await shot(page, 'after-restart');
    assert.deepEqual(problems, []);
  });

  test('200 services: first render, poll size, charts only for rows on screen', async (t) => {
    const services: Record<string, unknown> = {};
    for (let i = 0; i < 200; i++)
      services[`svc-${String(i).padStart(3, '0')}`] = { base_url: api.url, models: [`m${i}`] };
    const gw = await startTestGateway({ services }, { level: 'error' });
    t.after(() => gw.close());
    // Traffic on every service, so each has a timeline.
    for (let round = 0; round < 2; round++)
      await Promise.all(
        Object.keys(services).map(async (id) => (await fetch(`${gw.url}/services/${id}/x`)).arrayBuffer()),
      );

    const full = await (await fetch(`${gw.url}/v1/dashboard`)).text();
    const body = JSON.parse(full) as { timeline: { start: number; buckets: number; services: object } };
    assert.equal(Object.keys(body.timeline.services).length, 200);
    const since = body.timeline.start + (body.timeline.buckets - 1) * 10_000;
    const incremental = await (await fetch(`${gw.url}/v1/dashboard?since=${since}`)).text();
    const timelineBytes = (text: string) => JSON.stringify((JSON.parse(text) as { timeline: unknown }).timeline).length;
    const services200 = await (await fetch(`${gw.url}/v1/services`)).text();
    assert.ok(incremental.length < full.length, 'a poll from the last bucket is smaller than the whole window');

    const { page, problems, close } = await openPage(browser, 1500, 1000);
    t.after(close);
    const requests: string[] = [];
    page.on('request', (r) => requests.push(new URL(r.url()).pathname));
    const t0 = Date.now();
    await page.goto(`${gw.url}/ui`);
    const domMs = Date.now() - t0;
    await page.locator('tr[data-service="svc-000"] [data-field="traffic"] canvas').waitFor();
    const chartsMs = Date.now() - t0;
    const nav = (await page.evaluate(
      '(() => { const n = performance.getEntriesByType("navigation")[0]; return { domContentLoaded: Math.round(n.domContentLoadedEventEnd), html: n.transferSize }; })()',
    )) as { domContentLoaded: number; html: number };
    assert.equal(await page.locator('#services tbody tr[data-service]').count(), 200);
    const canvases = await page.locator('#services canvas').count();
    assert.ok(canvases > 0 && canvases < 200, `charts only for rows on screen (${canvases} canvases for 200 rows)`);
    await shot(page, 'services-200', false);
    t.diagnostic(
      `200 services: /v1/dashboard full window ${full.length} B (timeline ${timelineBytes(full)} B), ` +
        `incremental poll ${incremental.length} B (timeline ${timelineBytes(incremental)} B), ` +
        `/v1/services ${services200.length} B; page HTML ${nav.html} B, DOMContentLoaded ${nav.domContentLoaded} ms, ` +
        `goto ${domMs} ms, first charts ${chartsMs} ms; ${canvases} canvases; requests at load: ${requests.length}`,
    );
    assert.deepEqual(problems, []);
  });
});
