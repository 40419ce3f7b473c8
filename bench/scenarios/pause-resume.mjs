#!/usr/bin/env node
/**
 * Standalone measurement (not part of `npm run bench`): how long the first request waits when a
 * service comes back from `stop_mode: pause` (resume) versus from a real stop (a full start).
 *
 *   node bench/scenarios/pause-resume.mjs [--reps 10] [--boot-ms 0] [--no-container]
 *
 * Legs, each against the real gateway (bin/hestia.mjs serve) on 127.0.0.1:
 * - process / stop:   bench/upstreams/cold-child.mjs (ready after --boot-ms, a stand-in for a
 *                     model load), stopped with POST /v1/services/{id}/stop between requests;
 * - process / pause:  the same program with stop_mode: pause and a short idle timeout: each
 *                     measured request comes after the idle stop froze it (status paused: true);
 * - container / stop and container / pause: busybox httpd in podman (Docker API at
 *   $HESTIA_PODMAN_SOCK, default /tmp/hestia-ci/podman.sock, image localhost/hestia-busybox).
 * Reported: the client's wall time of the first request (p50, min, max over --reps), and the
 * gateway's own coldStartMs from the service_ready event.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, sleep } from '../lib/net.mjs';

const { values: o } = parseArgs({
  options: {
    reps: { type: 'string', default: '10' },
    'boot-ms': { type: 'string', default: '0' },
    'no-container': { type: 'boolean', default: false },
  },
});
const REPS = Number(o.reps);
const ROOT = new URL('../../', import.meta.url).pathname;
const SOCK = process.env.HESTIA_PODMAN_SOCK ?? '/tmp/hestia-ci/podman.sock';
const tmp = mkdtempSync(join(tmpdir(), 'hestia-pause-bench-'));
const IDLE_MS = 300;

async function main() {
  const ports = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const [gwPort, pStop, pPause, cStop, cPause] = ports;
  const child = (port) => ({
    type: 'process',
    command: [
      process.execPath,
      join(ROOT, 'bench/upstreams/cold-child.mjs'),
      '--port',
      '{port}',
      '--pid-file',
      join(tmp, `${port}.pids`),
      '--events-file',
      join(tmp, `${port}.events`),
      '--boot-ms',
      o['boot-ms'],
    ],
  });
  const svc = (port, launcher, extra) => ({
    base_url: `http://127.0.0.1:${port}`,
    health_url: `http://127.0.0.1:${port}/${launcher.type === 'docker' ? '' : 'health'}`,
    health_interval_ms: 250,
    start_backoff_ms: 0,
    launcher,
    ...extra,
  });
  const container = (name, port) => ({
    type: 'docker',
    container: name,
    socket: SOCK,
    stop_timeout_s: 2,
    create: {
      image: 'localhost/hestia-busybox:latest',
      cmd: ['/bin/httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/www'],
    },
  });
  const names = [`hestia-bench-stop-${process.pid}`, `hestia-bench-pause-${process.pid}`];
  const services = {
    'proc-stop': svc(pStop, child(pStop), {}),
    'proc-pause': svc(pPause, child(pPause), { stop_mode: 'pause', idle_timeout_ms: IDLE_MS }),
  };
  if (!o['no-container']) {
    services['ctr-stop'] = svc(cStop, container(names[0], cStop), {});
    services['ctr-pause'] = svc(cPause, container(names[1], cPause), { stop_mode: 'pause', idle_timeout_ms: IDLE_MS });
  }
  const cfg = join(tmp, 'config.json');
  writeFileSync(cfg, JSON.stringify({ services }));
  const gw = spawn(process.execPath, [join(ROOT, 'bin/hestia.mjs'), 'serve'], {
    env: {
      ...process.env,
      HESTIA_CONFIG_PATH: cfg,
      HESTIA_PORT: String(gwPort),
      HESTIA_DB_PATH: join(tmp, 'h.db'),
      HESTIA_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const base = `http://127.0.0.1:${gwPort}`;
  try {
    for (;;) {
      try {
        if ((await fetch(`${base}/healthz`)).ok) break;
      } catch {}
      await sleep(50);
    }
    const status = async (id) => (await fetch(`${base}/v1/services/${id}/status`)).json();
    const waitFor = async (id, pred) => {
      for (;;) {
        if (pred(await status(id))) return;
        await sleep(20);
      }
    };
    const timeFirst = async (id) => {
      const t0 = performance.now();
      const r = await fetch(`${base}/services/${id}/`);
      await r.arrayBuffer();
      if (!r.ok) throw new Error(`${id}: HTTP ${r.status}`);
      return { ms: performance.now() - t0, cold: Number(r.headers.get('x-hestia-cold-start')) };
    };
    const results = {};
    for (const id of Object.keys(services)) {
      const pause = id.endsWith('-pause');
      const samples = [];
      // The first start of a pause service is a full start: measure from the second on.
      if (pause) await timeFirst(id);
      for (let i = 0; i < REPS; i++) {
        if (pause) await waitFor(id, (s) => s.paused === true);
        else await waitFor(id, (s) => s.state === 'cold');
        samples.push(await timeFirst(id));
        if (!pause) await fetch(`${base}/v1/services/${id}/stop`, { method: 'POST' });
      }
      const ms = samples.map((s) => s.ms).sort((a, b) => a - b);
      const cold = samples.map((s) => s.cold).sort((a, b) => a - b);
      results[id] = {
        p50: ms[Math.floor(ms.length / 2)],
        min: ms[0],
        max: ms.at(-1),
        gatewayColdStartP50: cold[Math.floor(cold.length / 2)],
      };
      console.error(`${id}: ${JSON.stringify(results[id])}`);
    }
    console.log('| service | first request p50 (ms) | min | max | X-Hestia-Cold-Start p50 (ms) |');
    console.log('| --- | ---: | ---: | ---: | ---: |');
    for (const [id, r] of Object.entries(results))
      console.log(
        `| ${id} | ${r.p50.toFixed(1)} | ${r.min.toFixed(1)} | ${r.max.toFixed(1)} | ${r.gatewayColdStartP50} |`,
      );
  } finally {
    gw.kill('SIGTERM');
    await new Promise((r) => gw.once('exit', r));
    if (!o['no-container'])
      for (const n of names)
        await fetch(`http://d/v1.41/containers/${n}?force=true`, {
          method: 'DELETE',
          dispatcher: await unixAgent(),
        }).catch(() => {});
    rmSync(tmp, { recursive: true, force: true });
  }
}

async function unixAgent() {
  const { Agent } = await import('undici');
  return new Agent({ connect: { socketPath: SOCK } });
}

await main();
