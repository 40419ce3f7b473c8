/**
 * SPEC §12 start backoff: after a failed start, starts triggered by requests are refused for
 * `start_backoff_ms` (doubling per further failure up to 60 s, reset by a success) with 503
 * HESTIA_START_FAILED, the last error and Retry-After; `POST /v1/services/{id}/start` starts at
 * once regardless. The service is a real child process that fails until a file exists; starts
 * are counted as `service_start` events.
 */
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { ServiceStatus } from '../../src/services/types.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { failsUntilFlag, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';

const BACKOFF_MS = 20_000;
const tmp = tempDir();
let gw: TestGateway;
let events: EventRecorder;
const flag = tmp.path('model-present');

before(async () => {
  const port = await freePort();
  gw = await startTestGateway({
    services: {
      flaky: failsUntilFlag(port, flag, { start_backoff_ms: BACKOFF_MS }),
    },
  });
  events = new EventRecorder(gw.ctx.bus);
});
after(async () => {
  await gw.close();
  tmp.cleanup();
});

const starts = () => events.of('service_start', 'flaky').length;

async function status(): Promise<ServiceStatus> {
  return (await (await fetch(`${gw.url}/v1/services/flaky/status`)).json()) as ServiceStatus;
}

async function apiStart(): Promise<void> {
  assert.equal((await fetch(`${gw.url}/v1/services/flaky/start`, { method: 'POST' })).status, 202);
}

test('requests during the backoff are refused without a start; an explicit start overrides; doubling, cap and reset', async () => {
  const first = await fetch(`${gw.url}/services/flaky/`);
  assert.equal(first.status, 503);
  assert.equal(starts(), 1);
  assert.equal(first.headers.get('retry-after'), String(BACKOFF_MS / 1000), 'the failed start says when to come back');
  const left = (await status()).startBackoffRemainingMs;
  assert.ok(typeof left === 'number' && left > 0 && left <= BACKOFF_MS, `backoff running: ${left}`);

  // Requests (API client and browser) during the backoff: refused at once, nothing started.
  for (const accept of ['application/json', 'text/html']) {
    const res = await fetch(`${gw.url}/services/flaky/x`, { headers: { accept } });
    if (accept === 'application/json') {
      assert.equal(res.status, 503);
      const retryAfter = Number(res.headers.get('retry-after'));
      assert.ok(retryAfter >= 1 && retryAfter <= BACKOFF_MS / 1000, `Retry-After ${retryAfter}`);
      const body = (await res.json()) as { code: string; src: string; lastError: { message: string; code: string } };
      assert.equal(body.code, 'HESTIA_START_FAILED');
      assert.equal(body.src, 'hestia');
      assert.equal(body.lastError.code, 'HESTIA_START_FAILED');
      assert.match(body.lastError.message, /model file missing/);
    } else {
      await res.arrayBuffer();
    }
  }
  assert.equal(starts(), 1, 'no start during the backoff');

  // POST start overrides the backoff; its failure doubles it.
  await apiStart();
  await events.nth('service_start_failed', 2);
  assert.equal(starts(), 2);
  const doubled = (await status()).startBackoffRemainingMs ?? 0;
  assert.ok(doubled > BACKOFF_MS && doubled <= 2 * BACKOFF_MS, `doubled: ${doubled}`);
  await apiStart();
  await events.nth('service_start_failed', 3);
  const capped = (await status()).startBackoffRemainingMs ?? 0;
  assert.ok(capped > 2 * BACKOFF_MS && capped <= 60_000, `doubled again, capped at 60 s: ${capped}`);

  // A success resets it: the next failure backs off by start_backoff_ms again.
  writeFileSync(flag, '');
  await apiStart();
  await events.nth('service_ready', 1);
  assert.equal((await status()).startBackoffRemainingMs, null);
  assert.equal((await fetch(`${gw.url}/v1/services/flaky/stop`, { method: 'POST' })).status, 202);
  await events.nth('service_stopped', 1);
  rmSync(flag);
  assert.equal((await fetch(`${gw.url}/services/flaky/`)).status, 503);
  assert.equal(starts(), 5);
  const reset = (await status()).startBackoffRemainingMs ?? 0;
  assert.ok(reset > 0 && reset <= BACKOFF_MS, `reset to start_backoff_ms: ${reset}`);
});
