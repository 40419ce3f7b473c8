/**
 * The policy facts in the status JSON (GET /v1/services, GET /v1/services/{id}/status) and in
 * `hestia status`, against a real gateway with real process services.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { runCli } from '../helpers/cli.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { fixtureService, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';

const tmp = tempDir();
after(() => tmp.cleanup());
/** A window on a day three days from today: never active while the test runs. */
const DAY = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][(new Date().getDay() + 3) % 7];
const WINDOW = `${DAY} 10:00-12:00`;
const clean = { HESTIA_HOST: undefined, HESTIA_PORT: undefined, HESTIA_API_KEY: undefined };

test('status JSON and hestia status show keep-warm, dependencies, group, preload and paused', async (t) => {
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
  const gw = await startTestGateway({
    services: {
      web: fixtureService(p1, [], { depends_on: ['db'], group: 'app', keep_warm: [WINDOW] }),
      db: fixtureService(p2, [], { preload: true }),
      llm: fixtureService(p3, [], { stop_mode: 'pause', idle_timeout_ms: 100 }),
    },
  });
  t.after(() => gw.close());
  const rec = new EventRecorder(gw.ctx.bus);
  // db is preloaded at gateway start; llm is used once and pauses when idle.
  await (await fetch(`${gw.url}/services/llm/`)).arrayBuffer();
  await rec.nth('service_paused', 1);
  await rec.nth('service_ready', 2);

  const all = (await (await fetch(`${gw.url}/v1/services`)).json()) as { services: Array<Record<string, unknown>> };
  const byId = Object.fromEntries(all.services.map((s) => [s.serviceId, s]));
  assert.deepEqual(byId.web!.dependsOn, ['db']);
  assert.deepEqual(byId.db!.dependents, ['web']);
  assert.equal(byId.web!.group, 'app');
  assert.deepEqual(byId.web!.groupMembers, ['web']);
  const kw = byId.web!.keepWarm as Record<string, unknown>;
  assert.deepEqual(kw.windows, [WINDOW]);
  assert.equal(kw.active, null);
  assert.equal(typeof kw.nextStart, 'string');
  assert.equal(byId.db!.preload, true);
  assert.equal(byId.db!.state, 'hot');
  assert.equal(byId.db!.idleHold, null, 'no dependent is up');
  assert.equal(byId.llm!.state, 'cold');
  assert.equal(byId.llm!.paused, true);
  assert.equal(byId.llm!.stopMode, 'pause');
  assert.equal(byId.web!.keepWarm && byId.llm!.keepWarm, null);

  const one = (await (await fetch(`${gw.url}/v1/services/llm/status`)).json()) as Record<string, unknown>;
  assert.equal(one.paused, true);
  assert.equal(one.state, 'cold');

  const r = await runCli(['status', '--url', gw.url], { env: clean });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^llm\s+cold \(paused\)\s+local/m);
  assert.match(r.stdout, new RegExp(`^web: keep-warm ${WINDOW}; depends on db; group app$`, 'm'));
  assert.match(r.stdout, /^db: preload$/m);
  assert.match(r.stdout, /^llm: paused$/m);
});
