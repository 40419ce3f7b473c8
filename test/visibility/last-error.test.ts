/**
 * SPEC §12 "failure is visible": a failed start leaves `lastError` ({message, code, at,
 * attempts}) in /v1/services, /v1/services/{id}/status, `hestia status` and the dashboard page,
 * until the next successful start clears it. The service is a real child process that fails
 * until a file exists.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { LastError, ServiceStatus } from '../../src/services/types.ts';
import { runCli } from '../helpers/cli.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { failsUntilFlag, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';

const tmp = tempDir();
let gw: TestGateway;
let events: EventRecorder;
const flag = tmp.path('model-present');

before(async () => {
  const port = await freePort();
  gw = await startTestGateway({
    services: {
      flaky: failsUntilFlag(port, flag, { start_timeout_ms: 20_000, retry_count: 2 }),
    },
  });
  events = new EventRecorder(gw.ctx.bus);
});
after(async () => {
  await gw.close();
  tmp.cleanup();
});

async function statusOf(id: string): Promise<ServiceStatus> {
  const res = await fetch(`${gw.url}/v1/services/${id}/status`);
  assert.equal(res.status, 200);
  return (await res.json()) as ServiceStatus;
}

test('a failed start is in lastError everywhere; the next successful start clears it', async () => {
  assert.equal((await statusOf('flaky')).lastError, null, 'nothing failed yet');

  const res = await fetch(`${gw.url}/services/flaky/`);
  assert.equal(res.status, 503);
  const body = (await res.json()) as { code: string };
  assert.equal(body.code, 'HESTIA_START_FAILED');

  const err = (await statusOf('flaky')).lastError as LastError;
  assert.equal(err.code, 'HESTIA_START_FAILED');
  assert.equal(err.attempts, 2);
  assert.match(err.message, /exited with code 3: model file missing/);
  assert.ok(Math.abs(Date.parse(err.at) - Date.now()) < 60_000, `at is a recent ISO time: ${err.at}`);

  const list = (await (await fetch(`${gw.url}/v1/services`)).json()) as { services: ServiceStatus[] };
  assert.deepEqual(list.services.find((s) => s.serviceId === 'flaky')?.lastError, err);

  const cli = await runCli(['status', '--url', gw.url], {
    env: { HESTIA_HOST: undefined, HESTIA_PORT: undefined, HESTIA_API_KEY: undefined },
  });
  assert.equal(cli.code, 0, cli.stderr);
  assert.match(cli.stdout, /^flaky: last error \d+ s ago: .*model file missing/m);

  const page = await (await fetch(`${gw.url}/ui`)).text();
  assert.match(page, /<td data-field="lastError" class="error"><span title="[^"]+">[^<]*model file missing/);

  // Fixed: an explicit start succeeds and clears it.
  writeFileSync(flag, '');
  const start = await fetch(`${gw.url}/v1/services/flaky/start`, { method: 'POST' });
  assert.equal(start.status, 202);
  await events.nth('service_ready', 1);
  assert.equal((await statusOf('flaky')).lastError, null);
  const after = await runCli(['status', '--url', gw.url], {
    env: { HESTIA_HOST: undefined, HESTIA_PORT: undefined, HESTIA_API_KEY: undefined },
  });
  assert.doesNotMatch(after.stdout, /last error/);
});
