/**
 * A machine found answering is trusted for REACH_TRUST_MS: a start within that window goes
 * straight to its launcher without probing it again (the probe is an await on the network,
 * during which a burst of requests was read and queued before the launch). Real TCP listeners
 * stand in for the machine's ssh port; the clock is moved by hand.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, createServer, type Server } from 'node:net';
import { after, test } from 'node:test';
import type { Config } from '../../src/config/schema.ts';
import { PowerManager, REACH_TRUST_MS } from '../../src/machines/power.ts';
import { EventBus } from '../../src/observability/events.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { MachineUnavailableError } from '../../src/services/placement.ts';
import { configFrom } from '../helpers/gateway.ts';
import { freePort } from '../helpers/net.ts';
import { machineRegistry } from './helpers.ts';

const HOST = '127.0.0.5';

/** The machine's "ssh port": counts the connections it accepts. */
async function sshPort(port: number): Promise<{ server: Server; accepted: () => number }> {
  let n = 0;
  const server = createServer((s) => {
    n++;
    s.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, HOST, resolve);
  });
  return { server, accepted: () => n };
}

const closers: Array<() => void> = [];
after(() => {
  for (const c of closers) c();
});

/** A PowerManager on `config()` with the trust window's clock read from `now()`; closed after the tests. */
function powerOn(config: () => Config, now?: () => number): PowerManager {
  const power = new PowerManager({
    getConfig: config,
    bus: new EventBus(),
    log: createLogger({ level: 'silent' }),
    claimCount: () => 0,
    ...(now ? { now } : {}),
  });
  closers.push(() => void power.close());
  return power;
}

test('a machine that answered is not probed again within REACH_TRUST_MS; after it, or after a failure, it is', async () => {
  const port = await freePort(HOST);
  let ssh = await sshPort(port);
  closers.push(() => ssh.server.close());
  const file = {
    machines: { box: { host: HOST, ssh: { port, connect_timeout_ms: 1000 } } },
    services: { svc: { base_url: `http://${HOST}:9`, machines: ['box'] } },
  };
  let config = configFrom(file);
  let clock = 1_000_000;
  const power = powerOn(
    () => config,
    () => clock,
  );

  await power.ensureAwake('box', 'svc');
  assert.equal(ssh.accepted(), 1, 'the first start probes');
  clock += REACH_TRUST_MS - 1;
  await power.ensureAwake('box', 'svc');
  assert.equal(ssh.accepted(), 1, 'within the window: no probe');
  clock += 1;
  await power.ensureAwake('box', 'svc');
  assert.equal(ssh.accepted(), 2, 'the window ran out: probed again');
  config = configFrom(file);
  await power.ensureAwake('box', 'svc');
  assert.equal(ssh.accepted(), 3, 'a reload: the machine is probed under its new settings');
  await power.ensureAwake('box', 'svc');
  assert.equal(ssh.accepted(), 3, 'and trusted again');

  // Gone: after the window it is probed and found unreachable; from then on it is probed on
  // every start, even right after it answers again... until that answer starts a new window.
  await new Promise<void>((resolve) => ssh.server.close(() => resolve()));
  clock += REACH_TRUST_MS;
  await assert.rejects(power.ensureAwake('box', 'svc'), MachineUnavailableError);
  ssh = await sshPort(port);
  closers.push(() => ssh.server.close());
  await power.ensureAwake('box', 'svc');
  assert.equal(ssh.accepted(), 1, 'an unreachable machine is probed on the next start');
  await power.ensureAwake('box', 'svc');
  assert.equal(ssh.accepted(), 1, 'and trusted again once it answered');
});

test('when the launch reaches the machine over its ssh port, the probe runs beside it and its verdict is read after', async () => {
  const port = await freePort(HOST);
  const ssh = await sshPort(port);
  closers.push(() => ssh.server.close());
  const closedPort = await freePort(HOST);
  const machines = {
    box: { host: HOST, ssh: { port, connect_timeout_ms: 1000 } },
    gone: { host: HOST, ssh: { port: closedPort, connect_timeout_ms: 1000 } },
    napper: {
      host: HOST,
      ssh: { port: closedPort, connect_timeout_ms: 1000 },
      wake: { type: 'http', url: `http://${HOST}:${closedPort}/wake`, wait_timeout_ms: 200, wait_interval_ms: 50 },
    },
  };
  const config = configFrom({ machines, services: { svc: { base_url: `http://${HOST}:9`, machines: ['box'] } } });
  let clock = 1_000_000;
  const power = powerOn(
    () => config,
    () => clock,
  );
  const signal = new AbortController().signal;

  // Answers: the check comes back with a pending verdict, which says so.
  const beside = await power.checkBeforeLaunch('box', 'svc', signal, true);
  assert.ok(beside, 'a machine not checked yet is probed beside the launch');
  assert.equal(ssh.accepted(), 0, 'returned before the probe was answered');
  assert.equal(await beside.verdict, null);
  assert.equal(ssh.accepted(), 1);
  assert.equal(power.describe('box').state, 'awake');
  assert.equal(await power.checkBeforeLaunch('box', 'svc', signal, true), null, 'then trusted: nothing to check');
  assert.equal(ssh.accepted(), 1);
  clock += REACH_TRUST_MS;
  const again = await power.checkBeforeLaunch('box', 'svc', signal, true);
  assert.ok(again, 'an awake machine past the window: beside the launch again');
  assert.equal(await again.verdict, null);
  assert.equal(ssh.accepted(), 2);

  // Does not answer: the verdict is the error a start there fails with; from then on the
  // machine is known unreachable, and the next start waits for its probe before launching.
  const first = await power.checkBeforeLaunch('gone', 'svc', signal, true);
  assert.ok(first);
  const err = await first.verdict;
  assert.ok(err instanceof MachineUnavailableError);
  assert.equal(err.kind, 'unreachable');
  assert.match(err.message, /machine 'gone' is unreachable \(ssh port .*ECONNREFUSED\) and has no wake action/);
  assert.equal(power.describe('gone').state, 'unreachable');
  await assert.rejects(power.checkBeforeLaunch('gone', 'svc', signal, true), MachineUnavailableError);

  // A launch that does not go through the ssh port, or a machine that may need waking: awaited.
  const fresh = powerOn(() => config);
  await assert.rejects(fresh.checkBeforeLaunch('gone', 'svc', signal, false), MachineUnavailableError);
  await assert.rejects(fresh.checkBeforeLaunch('napper', 'svc', signal, true), MachineUnavailableError);
  assert.equal(fresh.describe('napper').state, 'unreachable', 'the wake was tried and failed first');
});

test('a start that would have to make room on the machine waits for the check first: nothing is evicted on a machine that does not answer', async () => {
  const upstream = createHttpServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  closers.push(() => upstream.close());
  const upPort = (upstream.address() as AddressInfo).port;
  const closedPort = await freePort(HOST);
  const box = { host: HOST, capacity: { gpu_mem_mb: 100 } };
  const a = { base_url: `http://127.0.0.1:${upPort}`, machines: ['box'], requires: { gpu_mem_mb: 100 } };
  // `box` has no ssh settings yet: not checked, so `a` (an external server) runs there.
  const mr = machineRegistry({ machines: { box }, services: { a } });
  closers.push(() => void mr.close());
  (await mr.registry.get('a')?.acquire())?.release();
  assert.equal(mr.registry.get('a')?.state, 'hot');

  // A reload gives the machine an ssh port where nothing listens, and an ssh-launched `b` that
  // needs all of its room.
  mr.registry.reconfigure(
    configFrom({
      machines: { box: { ...box, ssh: { port: closedPort, connect_timeout_ms: 1000 } } },
      services: {
        a,
        b: {
          base_url: `http://${HOST}:9`,
          machines: ['box'],
          requires: { gpu_mem_mb: 100 },
          launcher: { type: 'ssh', command: 'true' },
        },
      },
    }),
  );
  await assert.rejects(mr.registry.get('b')?.acquire() ?? Promise.resolve(), /machine 'box' is unreachable/);
  assert.deepEqual(mr.events.of('capacity_eviction'), [], 'a was not stopped to make room on a machine that is down');
  assert.equal(mr.registry.get('a')?.state, 'hot');
  assert.equal(mr.machines().find((m) => m.id === 'box')?.power.state, 'unreachable');
});
