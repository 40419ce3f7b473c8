/**
 * A machine found answering is trusted for REACH_TRUST_MS: a start within that window goes
 * straight to its launcher without probing it again (the probe is an await on the network,
 * during which a burst of requests was read and queued before the launch). Real TCP listeners
 * stand in for the machine's ssh port; the clock is moved by hand.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, test } from 'node:test';
import { PowerManager, REACH_TRUST_MS } from '../../src/machines/power.ts';
import { EventBus } from '../../src/observability/events.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { MachineUnavailableError } from '../../src/services/placement.ts';
import { configFrom } from '../helpers/gateway.ts';
import { freePort } from '../helpers/net.ts';

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
  const power = new PowerManager({
    getConfig: () => config,
    bus: new EventBus(),
    log: createLogger({ level: 'silent' }),
    claimCount: () => 0,
    now: () => clock,
  });
  closers.push(() => void power.close());

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
