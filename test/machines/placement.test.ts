/**
 * Placement through the real gateway (SPEC §6): "machines" are loopback addresses with an
 * upstream on each. Preference order, placement rules, failover past an unreachable machine
 * and past a machine whose start fails after its retries, the final error listing every
 * machine tried, and `GET /v1/machines`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HestiaEvent } from '../../src/observability/events.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { freePort } from '../helpers/net.ts';
import { namedHandler, startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('placement across machines (loopback addresses)', () => {
  let gw: TestGateway;
  let events: EventRecorder;
  const ups: Upstream[] = [];
  let port = 0;

  before(async () => {
    // The same port on two addresses: which machine answered is which address {host} became.
    port = await freePort('127.0.0.2');
    ups.push(await startUpstream(namedHandler('m2', { status: { '/start': 500 } }), { host: '127.0.0.2', port }));
    ups.push(await startUpstream(namedHandler('m3'), { host: '127.0.0.3', port }));
    const svc = (extra: Record<string, unknown>) => ({
      base_url: `http://{host}:${port}`,
      health_url: `http://{host}:${port}/health`,
      health_interval_ms: 20,
      ...extra,
    });
    gw = await startTestGateway({
      machines: {
        m2: { host: '127.0.0.2', tags: ['gpu'] },
        m3: { host: '127.0.0.3' },
        // Nothing listens on 127.0.0.4/5: their "ssh port" refuses connections.
        dead: { host: '127.0.0.4', ssh: { port: 2222, connect_timeout_ms: 5000 } },
        dead2: { host: '127.0.0.5', ssh: { port: 2222, connect_timeout_ms: 5000 } },
      },
      placement_rules: [{ match: { tags: ['big'] }, machines: ['m2', 'm3'] }],
      services: {
        pref: svc({ machines: ['m3', 'm2'] }),
        ruled: svc({ tags: ['big', 'chat'] }),
        failover: svc({ machines: ['dead', 'm2'] }),
        retried: svc({
          machines: ['m2', 'm3'],
          retry_count: 2,
          launcher: { type: 'http', start_url: `http://{host}:${port}/start` },
        }),
        nowhere: svc({ machines: ['dead', 'dead2'] }),
      },
    });
    events = new EventRecorder(gw.ctx.bus);
  });
  after(async () => {
    await gw?.close();
    await Promise.all(ups.map((u) => u.close()));
  });

  const call = async (id: string) => {
    const r = await fetch(`${gw.url}/services/${id}/who`);
    return { status: r.status, body: (await r.json()) as Record<string, unknown> };
  };
  const status = async (id: string) =>
    (await (await fetch(`${gw.url}/v1/services/${id}/status`)).json()) as Record<string, unknown>;

  test("a service's preference list is honoured: first machine that works, {host} substituted", async () => {
    const r = await call('pref');
    assert.deepEqual(r, { status: 200, body: { machine: 'm3', path: '/who' } });
    const s = await status('pref');
    assert.equal(s.state, 'hot');
    assert.equal(s.machineId, 'm3');
    const ready = events.of('service_ready', 'pref')[0];
    assert.equal(ready?.machineId, 'm3');
  });

  test('a placement rule matching the service tags gives the order', async () => {
    const r = await call('ruled');
    assert.equal(r.body.machine, 'm2');
    assert.equal((await status('ruled')).machineId, 'm2');
  });

  test('an unreachable first machine: the service starts on the second, status and events say so', async () => {
    const r = await call('failover');
    assert.equal(r.status, 200);
    assert.equal(r.body.machine, 'm2');
    assert.equal((await status('failover')).machineId, 'm2');
    const fo = events.of('machine_failover', 'failover');
    assert.equal(fo.length, 1);
    const d = fo[0]?.details ?? {};
    assert.equal(d.from, 'dead');
    assert.equal(d.to, 'm2');
    assert.equal(d.stage, 'unreachable');
    assert.match(String(d.reason), /machine 'dead' is unreachable \(ssh port 127\.0\.0\.4:2222: ECONNREFUSED\)/);
    // A machine that cannot be reached costs no launch attempts: its retries are not spent.
    assert.deepEqual(
      (d.attempts as Array<Record<string, unknown>>).map((a) => [a.machine, a.attempt]),
      [['dead', 0]],
    );
  });

  test('a start that fails on a machine after its retries moves to the next machine', async () => {
    const m2 = ups[0];
    const m3 = ups[1];
    assert.ok(m2 && m3);
    const r = await call('retried');
    assert.equal(r.status, 200);
    assert.equal(r.body.machine, 'm3');
    assert.equal(m2.hits.filter((h) => h === 'POST /start').length, 2, 'retry_count attempts on m2');
    assert.equal(m3.hits.filter((h) => h === 'POST /start').length, 1);
    const fo = events.of('machine_failover', 'retried')[0];
    const attempts = fo?.details.attempts as Array<Record<string, unknown>>;
    assert.deepEqual(
      attempts.map((a) => [a.machine, a.attempt, a.stage]),
      [
        ['m2', 1, 'start'],
        ['m2', 2, 'start'],
      ],
    );
    assert.match(String(attempts[0]?.reason), /answered 500/);
  });

  test('when every machine fails: 503 listing every machine tried and why each failed', async () => {
    const r = await call('nowhere');
    assert.equal(r.status, 503);
    assert.equal(r.body.code, 'HESTIA_START_FAILED');
    assert.deepEqual(r.body.machines, ['dead', 'dead2']);
    const failures = r.body.failures as Array<Record<string, unknown>>;
    assert.deepEqual(
      failures.map((f) => [f.machine, f.stage]),
      [
        ['dead', 'unreachable'],
        ['dead2', 'unreachable'],
      ],
    );
    assert.match(String(r.body.error), /dead: machine 'dead' is unreachable.*; dead2: machine 'dead2' is unreachable/);
    const failed: HestiaEvent | undefined = events.of('service_start_failed', 'nowhere')[0];
    assert.ok(failed);
    assert.equal((failed.details.failures as unknown[]).length, 2);
    assert.equal((await status('nowhere')).state, 'cold');
  });

  test('GET /v1/machines lists every machine with capacity, allocation by service, power', async () => {
    const r = await fetch(`${gw.url}/v1/machines`);
    assert.equal(r.status, 200);
    interface Row {
      id: string;
      host: string;
      tags: string[];
      capacity: Record<string, number>;
      allocation: Array<{ serviceId: string; requires: Record<string, number>; state: string }>;
      power: { state: string };
    }
    const { machines } = (await r.json()) as { machines: Row[] };
    const byId = (id: string): Row => {
      const m = machines.find((x) => x.id === id);
      assert.ok(m, `machine ${id} listed`);
      return m;
    };
    assert.deepEqual(
      machines.map((m) => m.id),
      ['local', 'm2', 'm3', 'dead', 'dead2'],
    );
    const m2 = byId('m2');
    assert.equal(m2.host, '127.0.0.2');
    assert.deepEqual(m2.tags, ['gpu']);
    assert.deepEqual(m2.capacity, {});
    const alloc = m2.allocation.map((a) => [a.serviceId, a.state, a.requires]).sort();
    assert.deepEqual(alloc, [
      ['failover', 'hot', {}],
      ['ruled', 'hot', {}],
    ]);
    assert.equal(byId('dead').power.state, 'unreachable');
    assert.equal(byId('local').power.state, 'always_on');
  });
});
