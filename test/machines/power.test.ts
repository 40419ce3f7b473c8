/**
 * Machine power (SPEC §6) on loopback: a Wake-on-LAN magic packet is received by a UDP
 * listener on 127.255.255.255; the "machine" (127.0.0.2) opens its ssh port and its upstream
 * only after the packet arrived, and the held requests are answered once it does. A wake that
 * never answers fails over. Sleep actions (http, command) run only once every service of the
 * machine is cold, after idle_sleep_ms.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { isMagicPacketFor } from '../../src/machines/wol.ts';
import type { EventType, HestiaEvent } from '../../src/observability/events.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { parseExposition } from '../helpers/prom-text.ts';
import { namedHandler, startUpstream, type Upstream } from '../helpers/upstream.ts';
import { tcpListener, udpListener } from './helpers.ts';

const MAC = '02:00:00:aa:bb:01';
const MAC_NEVER = '02:00:00:aa:bb:02';

interface MachineRow {
  id: string;
  power: {
    state: string;
    sleepDueAt: string | null;
    lastWakeAt: string | null;
    lastSleepAt: string | null;
    lastError: string | null;
  };
}

/** The first event of `type` for `serviceId`, waiting (bounded) for it. */
async function waitForEvent(events: EventRecorder, type: EventType, serviceId: string): Promise<HestiaEvent> {
  for (let n = 1; ; n++) {
    const ev = await events.nth(type, n);
    if (ev.serviceId === serviceId) return ev;
  }
}

async function machine(gw: TestGateway, id: string): Promise<MachineRow> {
  const { machines } = (await (await fetch(`${gw.url}/v1/machines`)).json()) as { machines: MachineRow[] };
  const m = machines.find((x) => x.id === id);
  assert.ok(m, `machine ${id} listed`);
  return m;
}

describe('wake-on-LAN before a start', () => {
  let gw: TestGateway;
  let events: EventRecorder;
  let udp: Awaited<ReturnType<typeof udpListener>>;
  let sshPort = 0;
  let upPort = 0;
  const closers: Array<() => Promise<void> | void> = [];
  let m3: Upstream;

  before(async () => {
    udp = await udpListener();
    closers.push(() => udp.close());
    sshPort = await freePort('127.0.0.2');
    upPort = await freePort('127.0.0.2');
    m3 = await startUpstream(namedHandler('m3'), { host: '127.0.0.3' });
    closers.push(() => m3.close());
    const wol = (mac: string, extra: Record<string, unknown>) => ({
      type: 'wol',
      mac,
      // The loopback broadcast: never 255.255.255.255 in tests (it leaves through eth0).
      address: '127.255.255.255',
      port: udp.port,
      wait_interval_ms: 25,
      ...extra,
    });
    gw = await startTestGateway({
      machines: {
        gpu: {
          host: '127.0.0.2',
          ssh: { port: sshPort, connect_timeout_ms: 2000 },
          wake: wol(MAC, { wait_timeout_ms: 30_000 }),
        },
        // Woken, but never answers: nothing will listen on 127.0.0.6.
        never: {
          host: '127.0.0.6',
          ssh: { port: 2222, connect_timeout_ms: 2000 },
          wake: wol(MAC_NEVER, { wait_timeout_ms: 300 }),
        },
        m3: { host: '127.0.0.3' },
      },
      services: {
        llm: {
          machines: ['gpu'],
          base_url: `http://{host}:${upPort}`,
          health_url: `http://{host}:${upPort}/health`,
          health_interval_ms: 20,
        },
        spare: {
          machines: ['never', 'm3'],
          base_url: `http://{host}:${m3.port}`,
          health_url: `http://{host}:${m3.port}/health`,
          health_interval_ms: 20,
        },
      },
    });
    events = new EventRecorder(gw.ctx.bus);
  });
  after(async () => {
    await gw?.close();
    for (const c of closers.reverse()) await c();
  });

  test('requests to a service on a sleeping machine: one magic packet, then they are answered once it is up', async () => {
    const packet = udp.next();
    // Three requests at once share one wake.
    const answers = Promise.all([1, 2, 3].map((i) => fetch(`${gw.url}/services/llm/q${i}`)));
    const got = await packet;
    assert.equal(got.length, 102);
    assert.ok(isMagicPacketFor(got, MAC), 'the magic packet carries the machine MAC');
    assert.equal(events.of('service_ready', 'llm').length, 0, 'no start before the machine answered');
    // The machine "boots": its ssh port, then its server.
    const ssh = await tcpListener('127.0.0.2', sshPort);
    closers.push(() => ssh.close());
    const up = await startUpstream(namedHandler('gpu'), { host: '127.0.0.2', port: upPort });
    closers.push(() => up.close());
    const rs = await answers;
    assert.deepEqual(
      rs.map((r) => r.status),
      [200, 200, 200],
    );
    const first = rs[0];
    assert.ok(first);
    assert.equal(((await first.json()) as Record<string, unknown>).machine, 'gpu');
    assert.equal(udp.packets.filter((p) => isMagicPacketFor(p, MAC)).length, 1, 'one wake for three requests');
    const wake = events.of('machine_wake', 'llm');
    assert.equal(wake.length, 1);
    assert.equal(wake[0]?.machineId, 'gpu');
    assert.equal(wake[0]?.details.action, 'wol');
    assert.equal(wake[0]?.details.result, 'ok');
    assert.equal(typeof wake[0]?.details.durationMs, 'number');
    const at = (t: string) => events.events.findIndex((e) => e.type === t && e.serviceId === 'llm');
    assert.ok(at('machine_wake') < at('service_ready'));
    const m = await machine(gw, 'gpu');
    assert.equal(m.power.state, 'awake');
    assert.ok(m.power.lastWakeAt);
    const metrics = parseExposition(await (await fetch(`${gw.url}/metrics`)).text());
    assert.equal(metrics.value('hestia_machine_wakes_total', { machine: 'gpu', result: 'ok' }), 1);
  });

  test('a woken machine that never answers: the start fails over, saying why', async () => {
    const r = await fetch(`${gw.url}/services/spare/x`);
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as Record<string, unknown>).machine, 'm3');
    assert.equal(udp.packets.filter((p) => isMagicPacketFor(p, MAC_NEVER)).length, 1);
    const wake = events.of('machine_wake', 'spare')[0];
    assert.equal(wake?.details.result, 'timeout');
    const fo = events.of('machine_failover', 'spare')[0];
    assert.equal(fo?.details.stage, 'wake_failed');
    assert.match(
      String(fo?.details.reason),
      /machine 'never' was woken \(wol\) but did not answer within 300 ms \(wait_timeout_ms; ssh port 127\.0\.0\.6:2222: ECONNREFUSED\)/,
    );
    assert.equal((await machine(gw, 'never')).power.state, 'unreachable');
    const metrics = parseExposition(await (await fetch(`${gw.url}/metrics`)).text());
    assert.equal(metrics.value('hestia_machine_wakes_total', { machine: 'never', result: 'timeout' }), 1);
    assert.equal(metrics.value('hestia_machine_failovers_total', { service: 'spare' }), 1);
  });
});

describe('sleep when none of the machine services has been up for idle_sleep_ms', () => {
  const tmp = tempDir();
  let gw: TestGateway;
  let events: EventRecorder;
  let up: Upstream;
  let sleeper: Upstream;

  before(async () => {
    up = await startUpstream(namedHandler('box'), { host: '127.0.0.2' });
    sleeper = await startUpstream(namedHandler('sleeper', { status: { '/fail': 500 } }), { host: '127.0.0.1' });
    const svc = (machine: string, extra: Record<string, unknown> = {}) => ({
      machines: [machine],
      base_url: `http://127.0.0.2:${up.port}`,
      health_url: `http://127.0.0.2:${up.port}/health`,
      health_interval_ms: 20,
      ...extra,
    });
    gw = await startTestGateway({
      machines: {
        box: {
          host: '127.0.0.2',
          sleep: { type: 'http', url: `http://127.0.0.1:${sleeper.port}/sleep/{machine}`, idle_sleep_ms: 50 },
        },
        cmdbox: {
          host: '127.0.0.2',
          sleep: {
            type: 'command',
            command: ['/bin/sh', '-c', `echo {machine} > ${tmp.path('slept')}`],
            idle_sleep_ms: 20,
          },
        },
        slowbox: {
          host: '127.0.0.2',
          sleep: { type: 'http', url: `http://127.0.0.1:${sleeper.port}/never`, idle_sleep_ms: 600_000 },
        },
        badbox: {
          host: '127.0.0.2',
          sleep: { type: 'http', url: `http://127.0.0.1:${sleeper.port}/fail`, idle_sleep_ms: 0 },
        },
      },
      services: {
        s1: svc('box'),
        s2: svc('box'),
        c1: svc('cmdbox', { idle_timeout_ms: 20 }),
        b1: svc('badbox'),
        l1: svc('slowbox'),
      },
    });
    events = new EventRecorder(gw.ctx.bus);
  });
  after(async () => {
    await gw?.close();
    await up?.close();
    await sleeper?.close();
    tmp.cleanup();
  });

  test('one service cold, another still hot: no sleep armed; both cold: the sleep action runs', async () => {
    for (const id of ['s1', 's2']) assert.equal((await fetch(`${gw.url}/services/${id}/`)).status, 200);
    assert.equal((await fetch(`${gw.url}/v1/services/s1/stop`, { method: 'POST' })).status, 202);
    await events.nth('service_stopped', 1);
    const whileS2Hot = await machine(gw, 'box');
    assert.equal(whileS2Hot.power.sleepDueAt, null, 'no sleep armed while s2 is hot');
    assert.equal(sleeper.hits.length, 0);
    // s2 goes cold too; then, idle_sleep_ms later, the machine sleeps.
    assert.equal((await fetch(`${gw.url}/v1/services/s2/stop`, { method: 'POST' })).status, 202);
    const slept = await events.nth('machine_sleep', 1);
    assert.equal(slept.machineId, 'box');
    assert.equal(slept.serviceId, null);
    assert.equal(slept.details.action, 'http');
    assert.equal(slept.details.result, 'ok');
    assert.equal(typeof slept.details.idleMs, 'number');
    assert.deepEqual(sleeper.hits, ['POST /sleep/box']);
    const metrics = parseExposition(await (await fetch(`${gw.url}/metrics`)).text());
    assert.equal(metrics.value('hestia_machine_sleeps_total', { machine: 'box', result: 'ok' }), 1);
    const stoppedS2 = events.events.findIndex((e) => e.type === 'service_stopped' && e.serviceId === 's2');
    assert.ok(stoppedS2 >= 0 && stoppedS2 < events.events.indexOf(slept), 'sleep only after the last service was cold');
    const m = await machine(gw, 'box');
    assert.equal(m.power.state, 'asleep');
    assert.ok(m.power.lastSleepAt);
    assert.equal(m.power.sleepDueAt, null, 'not armed again until the machine is used again');
  });

  test('after an idle stop, a command sleep action runs locally with {machine} substituted', async () => {
    assert.equal((await fetch(`${gw.url}/services/c1/`)).status, 200);
    const ev = await events.nth('machine_sleep', 2);
    assert.equal(ev.machineId, 'cmdbox');
    assert.ok(events.of('idle_shutdown', 'c1').length === 1, 'c1 went cold by its idle timeout');
    assert.equal(ev.details.result, 'ok');
    assert.equal(readFileSync(tmp.path('slept'), 'utf8').trim(), 'cmdbox');
  });

  test('a start on a machine whose sleep timer is armed disarms it', async () => {
    assert.equal((await machine(gw, 'slowbox')).power.sleepDueAt, null, 'never used: never armed');
    assert.equal((await fetch(`${gw.url}/services/l1/`)).status, 200);
    assert.equal((await fetch(`${gw.url}/v1/services/l1/stop`, { method: 'POST' })).status, 202);
    await waitForEvent(events, 'service_stopped', 'l1');
    const armed = (await machine(gw, 'slowbox')).power.sleepDueAt;
    assert.ok(armed && Date.parse(armed) > Date.now(), 'armed for idle_sleep_ms after the last service went cold');
    assert.equal((await fetch(`${gw.url}/services/l1/`)).status, 200);
    assert.equal((await machine(gw, 'slowbox')).power.sleepDueAt, null, 'disarmed by the new start');
    assert.equal(events.of('machine_sleep').filter((e) => e.machineId === 'slowbox').length, 0);
  });

  test('a failing sleep action is reported (event result failed, power lastError)', async () => {
    assert.equal((await fetch(`${gw.url}/services/b1/`)).status, 200);
    assert.equal((await fetch(`${gw.url}/v1/services/b1/stop`, { method: 'POST' })).status, 202);
    const ev = await events.nth('machine_sleep', 3);
    assert.equal(ev.machineId, 'badbox');
    assert.equal(ev.details.result, 'failed');
    assert.match(
      String(ev.details.reason),
      /sleep action \(http\) for machine 'badbox' failed: POST .*\/fail answered 500/,
    );
    const m = await machine(gw, 'badbox');
    assert.equal(m.power.state, 'unknown');
    assert.match(String(m.power.lastError), /answered 500/);
  });
});
