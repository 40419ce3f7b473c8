/**
 * End to end through the gateway: services whose launchers reach the real back ends (sshd,
 * podman's Docker API, Slurm) and local HTTP peers (fake Semaphore, an http start hook).
 * Driven by the control API (POST /v1/services/{id}/start|stop, GET …/status) and the
 * lifecycle event bus; each start must make the real upstream answer its health check, each
 * stop must really stop it. Each back end's part skips on its own when it is not set up.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { DockerApi } from '../../src/launchers/docker/index.ts';
import type { HestiaEvent } from '../../src/observability/events.ts';
import {
  CI_DIR,
  PODMAN_SOCK,
  podmanUnavailable,
  requireOrSkip,
  SLURM_CONF,
  SSH_DIR,
  slurmUnavailable,
  sshdUnavailable,
} from '../helpers/backends.ts';
import { type FakeSemaphore, startFakeSemaphore } from '../helpers/fake-semaphore.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { killPid, LAUNCHED_SERVER } from '../helpers/launchers.ts';
import { freePort, portOpen } from '../helpers/net.ts';

const run = promisify(execFile);
const sshSkip = requireOrSkip('sshd on 127.0.0.1:2222', await sshdUnavailable());
const slurmSkip = requireOrSkip('Slurm', await slurmUnavailable());
const podmanSkip = requireOrSkip('podman Docker API', await podmanUnavailable());
const RUN_DIR = `${CI_DIR}/e2e-${process.pid}`;
const CONTAINER = `hestia-test-e2e-${process.pid}`;

let gw: TestGateway;
let fake: FakeSemaphore;
let hook: Server;
const hooked = new Map<number, Server>();
const events: HestiaEvent[] = [];
const waiters: Array<() => void> = [];
const ports = { ssh: 0, broken: 0, docker: 0, slurm: 0, hook: 0 };

/** Wait (bounded) for the next `type` event of `serviceId` after index `from`. */
async function nextEvent(type: string, serviceId: string, from: number, timeoutMs = 60_000): Promise<HestiaEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = events.slice(from).find((e) => e.type === type && e.serviceId === serviceId);
    if (found) return found;
    const failed = events.slice(from).find((e) => e.type === 'service_start_failed' && e.serviceId === serviceId);
    if (failed && type !== 'service_start_failed')
      throw new Error(`service ${serviceId} failed to start: ${JSON.stringify(failed.details)}`);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for ${type} of ${serviceId}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

async function api(method: 'GET' | 'POST', path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${gw.url}${path}`, { method });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

/** Start through the API and wait until the service is ready (or its start failed). */
async function startAndWait(id: string): Promise<HestiaEvent> {
  const from = events.length;
  const r = await api('POST', `/v1/services/${id}/start`);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return nextEvent('service_ready', id, from);
}

async function stopAndWait(id: string): Promise<void> {
  const from = events.length;
  const r = await api('POST', `/v1/services/${id}/stop`);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await nextEvent('service_stopped', id, from);
  assert.equal((await api('GET', `/v1/services/${id}/status`)).body.state, 'cold');
}

async function fetchText(url: string): Promise<string> {
  return (await fetch(url)).text();
}

before(async () => {
  mkdirSync(RUN_DIR, { recursive: true });
  for (const k of Object.keys(ports) as Array<keyof typeof ports>) ports[k] = await freePort();
  fake = await startFakeSemaphore({ apiToken: 'e2e-token' });
  hook = createServer(async (req, res) => {
    let body = '';
    for await (const c of req) body += c;
    const port = Number((JSON.parse(body || '{}') as { port?: string }).port);
    if (req.url === '/start') {
      const s = createServer((_q, r) => r.end('hooked'));
      await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
      hooked.set(port, s);
    } else if (req.url === '/stop') {
      const s = hooked.get(port);
      hooked.delete(port);
      s?.closeAllConnections();
      await new Promise<void>((r) => (s ? s.close(() => r()) : r()));
    }
    res.writeHead(204);
    res.end();
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}`;

  const pidFile = (p: number) => `${RUN_DIR}/srv-${p}.pid`;
  const svc = (port: number, launcher: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
    base_url: `http://127.0.0.1:${port}`,
    health_url: `http://127.0.0.1:${port}/`,
    health_interval_ms: 50,
    start_timeout_ms: 60_000,
    launcher,
    ...extra,
  });
  gw = await startTestGateway({
    semaphore_base_url: fake.url,
    semaphore_api_key: 'e2e-token',
    machines: {
      box: {
        host: '127.0.0.1',
        ssh: { port: 2222, identity_file: `${SSH_DIR}/client_key`, known_hosts: `${SSH_DIR}/known_hosts` },
      },
    },
    services: {
      'via-ssh': svc(ports.ssh, {
        type: 'ssh',
        machine: 'box',
        command: `cd ${RUN_DIR} || exit 1; setsid nohup /usr/bin/node ${LAUNCHED_SERVER} {port} on-{machine} </dev/null >srv.log 2>&1 & echo $! > ${pidFile(ports.ssh)}`,
        // Returns only once the server is gone (a dead server lingers as a zombie until PID 1
        // reaps it), so an immediate restart cannot meet the old one still on the port.
        stop_command: `P=$(cat ${pidFile(ports.ssh)}); kill $P; for i in $(seq 100); do { [ -e /proc/$P ] && ! grep -q '^State:.*Z' /proc/$P/status; } || exit 0; sleep 0.1; done; exit 1`,
      }),
      'broken-ssh': svc(ports.broken, {
        type: 'ssh',
        machine: 'box',
        command: 'echo "model weights missing" >&2; exit 1',
      }),
      container: svc(ports.docker, {
        type: 'docker',
        container: CONTAINER,
        socket: PODMAN_SOCK,
        stop_timeout_s: 5,
        create: {
          image: 'localhost/hestia-busybox:latest',
          cmd: ['/bin/httpd', '-f', '-p', '127.0.0.1:{port}', '-h', '/www'],
        },
      }),
      job: {
        ...svc(ports.slurm, {
          type: 'slurm',
          command: `exec /usr/bin/node ${LAUNCHED_SERVER} {port} slurm-job`,
          env: { SLURM_CONF },
          sbatch_args: ['-o', `${RUN_DIR}/job-%j.out`],
          poll_interval_ms: 200,
          watch_interval_ms: 300,
        }),
        // {host} becomes the job's node (localhost on the CI cluster).
        base_url: `http://{host}:${ports.slurm}`,
        health_url: `http://{host}:${ports.slurm}/`,
      },
      automation: {
        base_url: 'http://127.0.0.1:9',
        semaphore_enabled: true,
        semaphore_machine_id: 'cloud-vm',
        semaphore_poll_interval: 0.02,
      },
      hook: svc(ports.hook, {
        type: 'http',
        start_url: `${hookUrl}/start`,
        stop_url: `${hookUrl}/stop`,
        body: { port: '{port}' },
      }),
    },
  });
  gw.ctx.bus.on('event', (ev) => {
    events.push(ev);
    for (const w of waiters.splice(0)) w();
  });
});

after(async () => {
  await gw?.close();
  await fake?.close();
  for (const s of hooked.values()) s.close();
  hook?.close();
  try {
    killPid(Number(readFileSync(`${RUN_DIR}/srv-${ports.ssh}.pid`, 'utf8')));
  } catch {
    /* not started */
  }
  if (!podmanSkip) {
    const d = new DockerApi({ socket: PODMAN_SOCK });
    await d.remove(CONTAINER).catch(() => undefined);
    await d.close();
  }
  if (!slurmSkip)
    await run('scancel', ['-n', 'hestia-job'], { env: { ...process.env, SLURM_CONF } }).catch(() => undefined);
  rmSync(RUN_DIR, { recursive: true, force: true });
});

describe('launchers end to end through the gateway', () => {
  test('ssh: start runs the remote command, the service becomes hot, stop kills it', {
    skip: sshSkip ?? false,
  }, async () => {
    await startAndWait('via-ssh');
    const st = (await api('GET', '/v1/services/via-ssh/status')).body;
    assert.equal(st.state, 'hot');
    // Reached over ssh on machine 'box'; with no machines list or rule, the launcher's machine
    // is where the service is placed (docs/machines.md), so {machine} and machineId are 'box'.
    assert.equal(st.machineId, 'box');
    assert.match(await fetchText(`http://127.0.0.1:${ports.ssh}/`), /"token":"on-box"/);
    await stopAndWait('via-ssh');
    assert.equal(await portOpen(ports.ssh), false);
    await startAndWait('via-ssh');
    await stopAndWait('via-ssh');
  });

  test("proxy: a request to the cold ssh service starts it over ssh and gets the remote server's answer", {
    skip: sshSkip ?? false,
  }, async () => {
    assert.equal((await api('GET', '/v1/services/via-ssh/status')).body.state, 'cold');
    const r = await fetch(`${gw.url}/services/via-ssh/hello`);
    assert.equal(r.status, 200);
    assert.match(await r.text(), /"token":"on-box"/);
    assert.ok(r.headers.get('x-hestia-cold-start'), 'the request waited for the start');
    await stopAndWait('via-ssh');
    assert.equal(await portOpen(ports.ssh), false);
  });

  test('ssh: a failing remote command becomes service_start_failed with its stderr, and the service is cold', {
    skip: sshSkip ?? false,
  }, async () => {
    const from = events.length;
    assert.equal((await api('POST', '/v1/services/broken-ssh/start')).status, 202);
    const failed = await nextEvent('service_start_failed', 'broken-ssh', from);
    assert.match(JSON.stringify(failed.details), /exited with code 1: model weights missing/);
    assert.equal((await api('GET', '/v1/services/broken-ssh/status')).body.state, 'cold');
  });

  test('docker: the container is created and started, then stopped (State exited)', {
    skip: podmanSkip ?? false,
  }, async () => {
    await startAndWait('container');
    assert.equal(await fetchText(`http://127.0.0.1:${ports.docker}/`), 'hi-podman\n');
    await stopAndWait('container');
    const d = new DockerApi({ socket: PODMAN_SOCK });
    try {
      assert.equal((await d.inspect(CONTAINER))?.State.Status, 'exited');
    } finally {
      await d.close();
    }
    await startAndWait('container');
    await stopAndWait('container');
  });

  test('slurm: the job runs, {host} is its node in health_url, stop cancels it', {
    skip: slurmSkip ?? false,
  }, async () => {
    await startAndWait('job');
    assert.match(await fetchText(`http://127.0.0.1:${ports.slurm}/`), /"token":"slurm-job"/);
    await stopAndWait('job');
    assert.equal(await portOpen(ports.slurm), false);
    const { stdout } = await run('squeue', ['-h', '-n', 'hestia-job', '-t', 'RUNNING,PENDING'], {
      env: { ...process.env, SLURM_CONF },
    });
    assert.equal(stdout.trim(), '', 'no job of the service left in the queue');
  });

  test('proxy: a request to the cold slurm service runs the job and reaches it at {host} = its node', {
    skip: slurmSkip ?? false,
  }, async () => {
    const r = await fetch(`${gw.url}/services/job/`);
    assert.equal(r.status, 200);
    assert.match(await r.text(), /"token":"slurm-job"/);
    await stopAndWait('job');
  });

  test('slurm: a job that ends on its own makes the service cold (service_crashed)', {
    skip: slurmSkip ?? false,
  }, async () => {
    await startAndWait('job');
    const from = events.length;
    await run('scancel', ['-n', 'hestia-job'], { env: { ...process.env, SLURM_CONF } });
    const crashed = await nextEvent('service_crashed', 'job', from);
    assert.match(JSON.stringify(crashed.details), /ended: CANCELLED/);
    assert.equal((await api('GET', '/v1/services/job/status')).body.state, 'cold');
  });

  test('semaphore: the start task runs, and status carries the original automation object', async () => {
    await startAndWait('automation');
    const st = (await api('GET', '/v1/services/automation/status')).body;
    assert.equal(st.state, 'hot');
    const automation = st.automation as Record<string, unknown>;
    assert.equal(automation.enabled, true);
    assert.equal(automation.provider, 'semaphore');
    assert.equal(automation.machine_id, 'cloud-vm');
    assert.equal(automation.current_task, null);
    assert.equal((automation.last_task as Record<string, unknown>).status, 'success');
    assert.equal((automation.last_task as Record<string, unknown>).template_id, 1);
    await stopAndWait('automation');
    assert.deepEqual(
      fake.tasks.slice(-2).map((t) => [t.template_id, JSON.parse(t.environment).ACTION, t.status]),
      [
        [1, 'start', 'success'],
        [2, 'stop', 'success'],
      ],
    );
  });

  test('http: the start hook starts the service, the stop hook stops it', async () => {
    await startAndWait('hook');
    assert.equal(await fetchText(`http://127.0.0.1:${ports.hook}/`), 'hooked');
    await stopAndWait('hook');
    assert.equal(await portOpen(ports.hook), false);
  });
});
