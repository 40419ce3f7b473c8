/**
 * Gateway restarts and shutdown (SPEC §1, §5): state in SQLite, re-adoption at boot with the
 * idle clock continuing, process children re-adopted only when provably ours, graceful drain,
 * and no launched child left alive after SIGTERM to a real `hestia serve`.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { dump } from 'js-yaml';
import { Store } from '../../src/store/store.ts';
import { HESTIA_BIN } from '../helpers/cli.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { fixtureArgv, fixtureService, isAlive, readPids, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { startUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const tmp = tempDir();
const spawned: ChildProcessWithoutNullStreams[] = [];
after(() => {
  for (const c of spawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  tmp.cleanup();
});

/** Start `hestia serve` as a real process; resolves with its URL once it listens. */
async function serveProcess(config: Record<string, unknown>, db: string) {
  const file = tmp.path(`config-${spawned.length}.yml`);
  writeFileSync(file, dump(config));
  const child = spawn(process.execPath, [HESTIA_BIN, 'serve'], {
    env: { ...process.env, HESTIA_CONFIG_PATH: file, HESTIA_DB_PATH: db, HESTIA_PORT: '0', HESTIA_HOST: '127.0.0.1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  spawned.push(child);
  let out = '';
  child.stdout.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on('data', (c: Buffer) => {
    out += c.toString();
  });
  let url = '';
  await waitFor(
    () => {
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out);
      if (m?.[1]) url = m[1];
      return url !== '' || child.exitCode !== null;
    },
    { message: 'hestia serve to listen' },
  );
  assert.ok(url, `hestia serve did not start:\n${out}`);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, url, exited, output: () => out };
}

async function statusOf(url: string, id: string): Promise<Record<string, unknown>> {
  return (await (await fetch(`${url}/v1/services/${id}/status`)).json()) as Record<string, unknown>;
}

test('restart: a service recorded hot whose health check passes is adopted, its idle clock continuing', async () => {
  const up = await startUpstream();
  const db = tmp.path('adopt.db');
  const config = {
    services: {
      api: {
        base_url: `http://127.0.0.1:${up.port}`,
        health_url: `http://127.0.0.1:${up.port}/health`,
        idle_timeout_ms: 60_000,
      },
    },
  };
  try {
    const a = await startTestGateway(config, { dbPath: db });
    const svcA = a.ctx.services.get('api');
    assert.ok(svcA);
    (await svcA.acquire()).release();
    const lastUsedAt = svcA.status().lastUsedAt;
    assert.equal(typeof lastUsedAt, 'string');
    await a.close();

    const b = await startTestGateway(config, { dbPath: db });
    try {
      const before = Date.now();
      const st = b.ctx.services.get('api')?.status();
      assert.equal(st?.state, 'hot');
      assert.equal(st?.lastUsedAt, lastUsedAt, 'the recorded last use is kept');
      // The idle deadline is the recorded last use + idle_timeout_ms, not boot time + timeout.
      const deadline = Date.parse(lastUsedAt as string) + 60_000;
      assert.ok((st?.idleRemainingMs as number) <= deadline - before, `${st?.idleRemainingMs} <= ${deadline - before}`);
      const evs = (await (await fetch(`${b.url}/v1/events?type=service_adopted`)).json()) as {
        events: Array<{ serviceId: string; details: Record<string, unknown> }>;
      };
      assert.equal(evs.events[0]?.serviceId, 'api');
      assert.equal(evs.events[0]?.details.via, 'boot');
    } finally {
      await b.close();
    }
  } finally {
    await up.close();
  }
});

test('restart: a service recorded hot whose upstream is gone comes back cold', async () => {
  const up = await startUpstream();
  const db = tmp.path('gone.db');
  const config = {
    services: { api: { base_url: `http://127.0.0.1:${up.port}`, health_url: `http://127.0.0.1:${up.port}/health` } },
  };
  const a = await startTestGateway(config, { dbPath: db });
  (await a.ctx.services.get('api')?.acquire())?.release();
  await a.close();
  await up.close();
  const b = await startTestGateway(config, { dbPath: db });
  try {
    assert.equal(b.ctx.services.get('api')?.state, 'cold');
    assert.ok(b.logs().some((l) => l.event_type === 'service_not_adopted' && l.service_id === 'api'));
  } finally {
    await b.close();
  }
});

test('restart: a recorded pid that is alive but not ours (start time differs) is left alone; the service is cold', async () => {
  const db = tmp.path('reuse.db');
  // A live process that merely has the recorded pid: it must survive the boot.
  const bystander = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    const pid = bystander.pid as number;
    const port = await freePort();
    const store = Store.open({ path: db, retentionMaxEvents: 1000, retentionMaxAgeDays: 1 });
    store.saveServiceState({
      serviceId: 'proc',
      state: 'hot',
      machineId: 'local',
      launcherType: 'process',
      persist: { pid, startTime: '1', bootId: null, argv: fixtureArgv() },
      startedAt: Date.now(),
      lastUsedAt: Date.now(),
    });
    store.close();
    const gw = await startTestGateway({ services: { proc: fixtureService(port, []) } }, { dbPath: db });
    try {
      assert.equal(gw.ctx.services.get('proc')?.state, 'cold');
      assert.equal(isAlive(pid), true, 'a process that is not ours is never signalled');
    } finally {
      await gw.close();
    }
  } finally {
    bystander.kill('SIGKILL');
  }
});

test('restart after a gateway crash: the surviving child is re-adopted (no second launch), and stopped at shutdown', async () => {
  const port = await freePort();
  const db = tmp.path('crash.db');
  const pids = tmp.path('crash.pids');
  const config = { services: { proc: fixtureService(port, ['--record-pid', pids], { idle_timeout_ms: 600_000 }) } };
  const first = await serveProcess(config, db);
  assert.equal((await fetch(`${first.url}/v1/services/proc/start`, { method: 'POST' })).status, 202);
  await waitFor(async () => (await statusOf(first.url, 'proc')).state === 'hot', { message: 'proc hot' });
  const [childPid] = readPids(pids);
  assert.ok(childPid);
  first.child.kill('SIGKILL'); // the gateway dies without any chance to clean up
  await first.exited;
  assert.equal(isAlive(childPid), true, 'its child, in its own process group, survived');

  const gw = await startTestGateway(config, { dbPath: db });
  let closed = false;
  try {
    const svc = gw.ctx.services.get('proc');
    assert.equal(svc?.state, 'hot');
    const lease = await svc?.acquire();
    assert.equal(lease?.coldStart, false);
    const info = (await (await fetch(`${lease?.baseUrl}/info`)).json()) as { pid: number };
    lease?.release();
    assert.equal(info.pid, childPid);
    assert.equal(readPids(pids).length, 1, 'no second launch');
    await gw.close();
    closed = true;
    assert.equal(isAlive(childPid), false, 'the adopted child is stopped at shutdown like any other');
  } finally {
    if (!closed) await gw.close();
  }
});

test('graceful shutdown: an in-flight lease finishes before the child is stopped', async () => {
  const port = await freePort();
  const pids = tmp.path('drain.pids');
  const gw = await startTestGateway({
    server: { shutdown_grace_ms: 10_000 },
    services: { proc: fixtureService(port, ['--record-pid', pids]) },
  });
  const svc = gw.ctx.services.get('proc');
  assert.ok(svc);
  const lease = await svc.acquire();
  const [pid] = readPids(pids);
  assert.ok(pid);
  let closed = false;
  const closing = gw.close().then(() => {
    closed = true;
  });
  await sleep(300); // the lease is held: nothing may be stopped meanwhile
  assert.equal(closed, false);
  assert.equal(svc.state, 'hot');
  assert.equal(isAlive(pid), true);
  lease.release();
  await closing;
  assert.equal(isAlive(pid), false);
});

test('graceful shutdown is bounded: a lease never released does not hold it past shutdown_grace_ms', async () => {
  const port = await freePort();
  const pids = tmp.path('grace.pids');
  const gw = await startTestGateway({
    server: { shutdown_grace_ms: 200 },
    services: { proc: fixtureService(port, ['--record-pid', pids]) },
  });
  await gw.ctx.services.get('proc')?.acquire(); // never released
  await gw.close();
  assert.equal(isAlive(readPids(pids)[0] ?? 0), false);
});

test('SIGTERM to `hestia serve`: queued requests get 503, exit 0, no launched child (or grandchild) left alive', async () => {
  const hotPort = await freePort();
  const startingPort = await freePort();
  const hotPids = tmp.path('sigterm-hot.pids');
  const startingPids = tmp.path('sigterm-starting.pids');
  const grandchild = tmp.path('sigterm-grandchild.pid');
  const gate = tmp.path('never-created.gate');
  const served = await serveProcess(
    {
      services: {
        hot: fixtureService(hotPort, ['--record-pid', hotPids, '--grandchild-pid', grandchild]),
        starting: fixtureService(startingPort, ['--record-pid', startingPids, '--fail-health-until-file', gate]),
      },
    },
    tmp.path('sigterm.db'),
  );
  await fetch(`${served.url}/v1/services/hot/start`, { method: 'POST' });
  await fetch(`${served.url}/v1/services/starting/start`, { method: 'POST' });
  await waitFor(async () => (await statusOf(served.url, 'hot')).state === 'hot', { message: 'hot service up' });
  await waitFor(() => readPids(startingPids).length === 1, { message: 'second service launched' });
  const pids = [...readPids(hotPids), ...readPids(startingPids), Number(readFileSync(grandchild, 'utf8'))];
  assert.equal(pids.length, 3);
  assert.ok(pids.every(isAlive));

  // A request queued behind the start that never finishes: answered 503 at shutdown.
  const queued = fetch(`${served.url}/services/starting/x`);
  await waitFor(async () => (await statusOf(served.url, 'starting')).queuePending === 1, {
    message: 'a queued request',
  });

  served.child.kill('SIGTERM');
  const q = await queued;
  assert.equal(q.status, 503);
  assert.equal(((await q.json()) as Record<string, unknown>).code, 'HESTIA_SHUTTING_DOWN');
  const code = await served.exited;
  assert.equal(code, 0, served.output());
  for (const pid of pids) assert.equal(isAlive(pid), false, `pid ${pid} is gone`);
  assert.match(served.output(), /"event_type":"shutdown_complete"/);
});
