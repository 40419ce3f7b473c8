/**
 * `preload: true`: started when the gateway starts (after re-adoption) and when a reload adds
 * it; a preload that fails is an event and a lastError, never fatal.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configFrom } from '../helpers/gateway.ts';
import { closedAfterEachTest, fixtureService } from '../helpers/lifecycle.ts';
import { freePort, refusedPort } from '../helpers/net.ts';
import { policyRegistry } from './helpers.ts';

const { keep } = closedAfterEachTest();

test('preload services start at boot (dependencies first); a failing preload is recorded, not fatal', async () => {
  const [p1, p2, p3] = [await freePort(), await freePort(), await refusedPort()];
  const t = keep(
    policyRegistry({
      coder: fixtureService(p1, [], { preload: true, depends_on: ['db'] }),
      db: fixtureService(p2, []),
      broken: {
        base_url: `http://127.0.0.1:${p3}`,
        health_url: `http://127.0.0.1:${p3}/health`,
        preload: true,
        launcher: { type: 'process', command: ['/bin/sh', '-c', 'echo "CUDA out of memory" >&2; exit 2'] },
      },
      idle: fixtureService(await freePort(), []),
    }),
  );
  await t.registry.restore();
  await t.events.nth('service_start_failed', 1);
  const failed = t.events.of('service_start_failed')[0]!;
  assert.equal(failed.serviceId, 'broken');
  const broken = t.registry.get('broken')!;
  assert.equal(broken.state, 'cold');
  assert.match(String(broken.status().lastError?.message), /CUDA out of memory/);

  await t.events.nth('service_ready', 2);
  assert.deepEqual(
    t.events.of('service_ready').map((e) => e.serviceId),
    ['db', 'coder'],
  );
  const start = t.events.of('service_start', 'coder')[0]!;
  assert.equal(start.details.cause, 'policy');
  assert.equal(start.details.reason, 'preload');
  assert.equal(t.registry.get('coder')!.status().preload, true);
  assert.equal(t.registry.get('idle')!.state, 'cold', 'services without preload stay cold');
});

test('a reload that adds a preload service starts it', async () => {
  const a = fixtureService(await freePort(), []);
  const t = keep(policyRegistry({ a }));
  await t.registry.restore();
  t.registry.reconfigure(configFrom({ services: { a, b: fixtureService(await freePort(), [], { preload: true }) } }));
  const ready = await t.events.nth('service_ready', 1);
  assert.equal(ready.serviceId, 'b');
  assert.equal(t.registry.get('a')!.state, 'cold');
});
