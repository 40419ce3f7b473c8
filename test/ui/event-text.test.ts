/**
 * The dashboard's one-line summary of an event (src/ui/page.ts `describeEvent`; its twin in
 * assets/app.js is checked in Chromium by dashboard.test.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ApiEvent } from '../../src/observability/event-stream.ts';
import { describeEvent } from '../../src/ui/page.ts';

const ev = (type: string, details: Record<string, unknown>): ApiEvent => ({
  id: 1,
  ts: 0,
  time: '1970-01-01T00:00:00.000Z',
  type,
  serviceId: 'llm',
  machineId: 'local',
  details,
});

test("service_ready says where the start's time went when the event carries its phases", () => {
  const phases = { coldStartMs: 8240, launchAfterMs: 3.2, launchTookMs: 8.7, readyAfterMs: 8228.1 };
  assert.equal(describeEvent(ev('service_ready', phases)), 'ready after 8.2 s: launch 12 ms, its own start-up 8.2 s');
  const slowLaunch = { coldStartMs: 95_000, launchAfterMs: 61_000, launchTookMs: 400, readyAfterMs: 33_600 };
  assert.equal(
    describeEvent(ev('service_ready', slowLaunch)),
    'ready after 95.0 s: launch 61.4 s, its own start-up 33.6 s',
  );
  // A resumed service (no launch) and events stored before the phases existed: the total only.
  assert.equal(describeEvent(ev('service_ready', { coldStartMs: 56, resumed: true })), 'ready after 0.1 s');
});

test('other events show their error, reason, cause or code', () => {
  assert.equal(describeEvent(ev('service_start_failed', { error: 'no model file', reason: 'x' })), 'no model file');
  assert.equal(describeEvent(ev('service_stop', { cause: 'idle' })), 'idle');
  assert.equal(describeEvent(ev('queue_rejected', { code: 'HESTIA_QUEUE_FULL' })), 'HESTIA_QUEUE_FULL');
  assert.equal(describeEvent(ev('config_reloaded', {})), '');
});
