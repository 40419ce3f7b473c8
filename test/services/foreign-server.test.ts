/**
 * Issue 17 item 13: a server Hestia did not start, already on a `process` service's port, is not
 * adopted as the service: the start is refused naming the port (unless `adopt_running: true`),
 * and a child that dies because its address is taken says so.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { after, test } from 'node:test';
import type { ServiceConfig } from '../../src/config/schema.ts';
import type { TemplateVars } from '../../src/launchers/types.ts';
import { answeringStranger } from '../../src/services/stranger-check.ts';
import { json, send } from '../helpers/client.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { fixtureArgv, fixtureService, isAlive } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** An HTTP server that is not the service: answers 200 "stranger" to everything. */
async function stranger(): Promise<Upstream> {
  const up = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('stranger');
  });
  cleanups.push(() => up.close());
  return up;
}

/** PIDs of live processes whose command line has `--port <port>` (children launched for that port). */
function launchedFor(port: number): number[] {
  const pids: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      const i = argv.indexOf('--port');
      if (i >= 0 && argv[i + 1] === String(port) && isAlive(Number(d))) pids.push(Number(d));
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

test('a foreign server on the port: the start is refused naming the port; the stranger never gets the request', async () => {
  const up = await stranger();
  // A child that would stay up for 30 s before listening: it must not be left running.
  const gw = await startTestGateway({ services: { svc: fixtureService(up.port, ['--boot-ms', '30000']) } });
  cleanups.push(() => gw.close());
  const r = await send(gw.url, '/services/svc/hello');
  assert.equal(r.status, 503, r.body);
  const body = json(r);
  assert.equal(body.code, 'HESTIA_START_FAILED');
  assert.match(String(body.error), new RegExp(`port ${up.port} on 127\\.0\\.0\\.1 is already in use`));
  assert.match(String(body.error), /adopt_running: true/);
  // The holder is this test process; named when /proc shows it (Linux).
  if (existsSync('/proc/net/tcp'))
    assert.match(String(body.error), new RegExp(`already in use by pid ${process.pid} \\(`), String(body.error));
  assert.deepEqual(
    up.requests.map((q) => q.url),
    up.requests.map(() => '/health'),
    'only health probes reached the stranger, never the proxied request',
  );
  const status = json(await send(gw.url, '/v1/services/svc/status'));
  assert.equal(status.state, 'cold');
  // The child launched while the port was checked (stranger-check.ts) was stopped with the start.
  assert.deepEqual(launchedFor(up.port), []);
});

test('adopt_running: true uses the server already answering', async () => {
  const up = await stranger();
  const gw = await startTestGateway({
    services: { svc: fixtureService(up.port, ['--boot-ms', '30000'], { adopt_running: true }) },
  });
  cleanups.push(() => gw.close());
  const r = await send(gw.url, '/services/svc/hello');
  assert.equal(r.status, 200, r.body);
  assert.equal(r.body, 'stranger');
  assert.equal(json(await send(gw.url, '/v1/services/svc/status')).state, 'hot');
  assert.deepEqual(launchedFor(up.port), [], 'nothing of ours runs beside the adopted server');
});

test('a child that dies with EADDRINUSE says its address is in use', async () => {
  // A TCP listener that is not HTTP: the probe sees no answer, so the child is launched and fails to listen.
  const tcp = createTcpServer((s) => s.destroy());
  tcp.listen(0, '127.0.0.1');
  await once(tcp, 'listening');
  cleanups.push(() => new Promise((resolve) => tcp.close(resolve)));
  const port = (tcp.address() as AddressInfo).port;
  const gw = await startTestGateway({ services: { svc: fixtureService(port, [], { retry_count: 1 }) } });
  cleanups.push(() => gw.close());
  const r = await send(gw.url, '/services/svc/hello');
  assert.equal(r.status, 503, r.body);
  assert.equal(json(r).code, 'HESTIA_START_FAILED');
  assert.match(String(json(r).error), /EADDRINUSE/);
  assert.match(String(json(r).error), /its address is already in use by another process/);
});

test('a listener in the group of the child just launched is ours, not a stranger', async () => {
  // The rare race the connect check leaves open (src/services/DESIGN.md, "A stranger on the
  // port"): our own fast child already answers when the HTTP probe runs after the launch.
  const port = await freePort();
  const child = spawn(
    fixtureArgv()[0]!,
    fixtureArgv()
      .slice(1)
      .map((a) => a.replace('{port}', String(port))),
    {
      detached: true,
      stdio: 'ignore',
    },
  );
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(-child.pid!, 'SIGKILL');
      await once(child, 'exit');
    }
  });
  await waitFor(async () => (await send(`http://127.0.0.1:${port}`, '/health').catch(() => null))?.status === 200, {
    message: 'the fixture to answer /health',
  });
  const cfg = fixtureService(port, []) as unknown as ServiceConfig;
  const vars: TemplateVars = { host: '127.0.0.1', machine: 'local', port: String(port), service: 'svc' };
  const signal = new AbortController().signal;
  assert.equal(await answeringStranger(cfg, vars, signal, child.pid!), null);
  // The same server seen from a start that launched nothing (or something else) is a stranger.
  assert.match(
    String(await answeringStranger(cfg, vars, signal, null)),
    new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use by pid ${child.pid}`),
  );
  assert.match(String(await answeringStranger(cfg, vars, signal, process.pid)), /is already in use/);
});
