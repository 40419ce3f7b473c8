/**
 * Machines with the real ssh launcher and ssh power actions, against the CI sshd on
 * 127.0.0.1:2222 (scripts/ci/setup-sshd.sh): a service whose first machine's sshd does not
 * answer starts over ssh on the second; a machine woken by an ssh command run on another
 * machine (the "wake through a jump host" case) is waited for through its wait_url; an ssh sleep
 * action runs on the machine once its services are cold.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { CI_DIR, requireOrSkip, SSH_DIR, sshdUnavailable } from '../helpers/backends.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { killPid, LAUNCHED_SERVER } from '../helpers/launchers.ts';
import { freePort } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';

const skip = requireOrSkip('sshd on 127.0.0.1:2222', await sshdUnavailable());
const RUN_DIR = `${CI_DIR}/ssh/machines-runs-${process.pid}`;

const SSH = {
  user: 'root',
  port: 2222,
  identity_file: `${SSH_DIR}/client_key`,
  known_hosts: `${SSH_DIR}/known_hosts`,
  connect_timeout_ms: 5000,
};

/** Detached server on {port} (one simple background command, all fds redirected: see ssh/exec.ts). */
const serveCmd = (token: string, pidFile: string) =>
  `cd ${RUN_DIR} || exit 1; setsid nohup /usr/bin/node ${LAUNCHED_SERVER} {port} ${token} </dev/null >srv-{port}.log 2>&1 & echo $! > ${pidFile}`;

describe('machines over ssh (real sshd on 127.0.0.1:2222)', { skip: skip ?? false }, () => {
  let gw: TestGateway;
  let events: EventRecorder;
  const pidFiles: string[] = [];
  let lazyPort = 0;

  before(async () => {
    mkdirSync(RUN_DIR, { recursive: true });
    const remotePort = await freePort();
    lazyPort = await freePort();
    const remotePid = `${RUN_DIR}/remote.pid`;
    const lazyPid = `${RUN_DIR}/lazy.pid`;
    pidFiles.push(remotePid, lazyPid);
    gw = await startTestGateway({
      machines: {
        // 127.0.0.4:2222: nothing listens (sshd is bound to 127.0.0.1 only).
        down: { host: '127.0.0.4', ssh: SSH },
        box: {
          host: '127.0.0.1',
          ssh: SSH,
          sleep: { type: 'ssh', command: `echo slept-{machine} > ${RUN_DIR}/slept`, idle_sleep_ms: 20 },
        },
        lazy: {
          host: '127.0.0.1',
          wake: {
            type: 'ssh',
            machine: 'box',
            command: `cd ${RUN_DIR} || exit 1; setsid nohup /usr/bin/node ${LAUNCHED_SERVER} ${lazyPort} lazy </dev/null >lazy.log 2>&1 & echo $! > ${lazyPid}`,
            wait_url: `http://{host}:${lazyPort}/`,
            wait_timeout_ms: 20_000,
            wait_interval_ms: 50,
          },
        },
      },
      services: {
        remote: {
          machines: ['down', 'box'],
          base_url: `http://{host}:${remotePort}`,
          health_url: `http://{host}:${remotePort}/`,
          health_interval_ms: 50,
          launcher: {
            type: 'ssh',
            command: serveCmd('remote-{machine}', remotePid),
            stop_command: `kill $(cat ${remotePid}) && rm -f ${remotePid}`,
            timeout_ms: 20_000,
          },
        },
        napper: { machines: ['lazy'], base_url: `http://{host}:${lazyPort}` },
      },
    });
    events = new EventRecorder(gw.ctx.bus);
  });
  after(async () => {
    await gw?.close();
    for (const f of pidFiles) {
      try {
        killPid(Number(readFileSync(f, 'utf8').trim()));
      } catch {
        /* not started */
      }
    }
    rmSync(RUN_DIR, { recursive: true, force: true });
  });

  test('first machine unreachable over ssh: the ssh launcher starts it on the second, {machine} substituted', async () => {
    const r = await fetch(`${gw.url}/services/remote/`);
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { token: string }).token, 'remote-box');
    const s = (await (await fetch(`${gw.url}/v1/services/remote/status`)).json()) as Record<string, unknown>;
    assert.equal(s.machineId, 'box');
    const fo = events.of('machine_failover', 'remote')[0];
    assert.equal(fo?.details.from, 'down');
    assert.match(String(fo?.details.reason), /ssh port 127\.0\.0\.4:2222: ECONNREFUSED/);
    // The ssh port was probed beside the ssh launch (both connect to it); its verdict is what
    // the failover records, as when the probe came first: the machine is unreachable, and its
    // retries were not spent.
    assert.equal(fo?.details.stage, 'unreachable');
    assert.match(String(fo?.details.reason), /machine 'down' is unreachable .* and has no wake action/);
    assert.deepEqual(
      ((fo?.details.attempts ?? []) as Array<Record<string, unknown>>).map((a) => [a.machine, a.attempt]),
      [['down', 0]],
    );
    const listed = (await (await fetch(`${gw.url}/v1/machines`)).json()) as {
      machines: Array<{ id: string; power: { state: string } }>;
    };
    assert.equal(listed.machines.find((m) => m.id === 'down')?.power.state, 'unreachable');
  });

  test('an ssh sleep action runs on the machine after its last service went cold', async () => {
    assert.equal((await fetch(`${gw.url}/v1/services/remote/stop`, { method: 'POST' })).status, 202);
    const ev = await events.nth('machine_sleep', 1, 30_000);
    assert.equal(ev.machineId, 'box');
    assert.equal(ev.details.result, 'ok', String(ev.details.reason));
    assert.equal(readFileSync(`${RUN_DIR}/slept`, 'utf8').trim(), 'slept-box');
  });

  test('a machine woken by an ssh command on another machine is waited for through its wait_url', async () => {
    const r = await fetch(`${gw.url}/services/napper/x`);
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as { token: string }).token, 'lazy');
    const wake = events.of('machine_wake', 'napper')[0];
    assert.equal(wake?.machineId, 'lazy');
    assert.equal(wake?.details.action, 'ssh');
    assert.equal(wake?.details.result, 'ok');
    assert.match(String(wake?.details.detail), /ssh command on box succeeded/);
    await waitFor(
      async () => {
        try {
          return readFileSync(`${RUN_DIR}/lazy.pid`, 'utf8').trim() !== '';
        } catch {
          return false;
        }
      },
      { message: 'lazy server pid file' },
    );
  });
});
