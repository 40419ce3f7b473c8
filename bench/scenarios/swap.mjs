/**
 * Model swapping: two model services (`swap-a`, `swap-b`, each a `process` launcher running
 * bench/upstreams/cold-child.mjs that "loads" for --swap-boot-ms) that do not fit together in the
 * local machine's `gpu_mem_mb` (20,000 each of 24,000). Two clients, one per model, send chat
 * requests to `/v1/chat/completions` at the same time, each waiting for its answer before the
 * next, so the gateway must swap the models back and forth (the fairness rule of docs/models.md:
 * one batch per model per swap).
 *
 * Measured, from the children's own clocks and the gateway's events:
 * - swaps: `capacity_eviction` events, and launches per model;
 * - per request: wait (client latency) p50/p99/max, and statuses (all must be 200);
 * - swap time — the gateway's own overhead in a swap: the time from the old model's exit to the
 *   new one's first forwarded request, minus the new model's own start time (its process start
 *   → its /health answering 200). Split into stop → spawn (the gateway noticing the exit and
 *   launching) and ready → first forward (noticing readiness; bounded by `health_interval_ms`,
 *   set to SWAP_HEALTH_INTERVAL_MS here). Target: ≤ 50 ms.
 */
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHestia } from '../lib/hestia.mjs';
import { freePort, HOST, nowMs } from '../lib/net.mjs';
import { adoptPid, pinnedArgv } from '../lib/procs.mjs';
import { median, percentile } from '../lib/stats.mjs';
import { chatBody } from './models.mjs';

const CHILD = fileURLToPath(new URL('../upstreams/cold-child.mjs', import.meta.url));
export const SWAP_HEALTH_INTERVAL_MS = 20;

function post(url, body) {
  return new Promise((resolve) => {
    const t0 = nowMs();
    const req = http.request(
      url,
      { method: 'POST', agent: false, headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode, ms: nowMs() - t0 }));
      },
    );
    req.setTimeout(120_000, () => req.destroy(new Error('client timeout')));
    req.on('error', (err) => resolve({ status: 0, error: err.code ?? err.message, ms: nowMs() - t0 }));
    req.end(body);
  });
}

function readEvents(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

export async function runSwap(ctx) {
  const { opts, tmpDir, log } = ctx;
  const models = ['a', 'b'];
  const files = {};
  const services = {};
  for (const m of models) {
    const port = await freePort();
    files[m] = { pids: join(tmpDir, `swap-${m}.pids`), events: join(tmpDir, `swap-${m}.events`) };
    const [cmd, args] = pinnedArgv(ctx.loadCore, process.execPath, [
      CHILD,
      '--port',
      String(port),
      '--pid-file',
      files[m].pids,
      '--events-file',
      files[m].events,
      '--boot-ms',
      String(opts.swapBootMs),
    ]);
    services[`swap-${m}`] = {
      base_url: `http://${HOST}:${port}`,
      health_url: `http://${HOST}:${port}/health`,
      health_interval_ms: SWAP_HEALTH_INTERVAL_MS,
      models: [`model-${m}`],
      requires: { gpu_mem_mb: 20_000 },
      request_timeout_seconds: 120,
      start_timeout_ms: 30_000,
      launcher: { type: 'process', command: [cmd, ...args], stop_timeout_ms: 3000 },
    };
  }
  const gw = await startHestia({
    name: 'swap',
    config: { machines: { local: { host: HOST, capacity: { gpu_mem_mb: 24_000 } } }, services },
    tmpDir,
    core: ctx.gatewayCore,
  });
  const results = { a: [], b: [] };
  let events = [];
  try {
    const client = async (m) => {
      const body = chatBody(1024).replace('bench-model', `model-${m}`);
      for (let i = 0; i < opts.swapRequests; i++) results[m].push(await post(`${gw.url}/v1/chat/completions`, body));
    };
    await Promise.all(models.map(client));
    const res = await fetch(`${gw.url}/v1/events?limit=1000`);
    events = ((await res.json()).events ?? []).reverse();
  } finally {
    for (const m of models) {
      if (!existsSync(files[m].pids)) continue;
      for (const pid of readFileSync(files[m].pids, 'utf8').split('\n').filter(Boolean)) adoptPid(Number(pid));
    }
    await gw.stop();
  }
  return analyse({ models, files, results, events, log });
}

function analyse({ models, files, results, events, log }) {
  // Each child process is one launch: its boot (with its own start time), ready, first forwarded
  // request and exit, keyed by PID.
  const launches = [];
  for (const m of models) {
    const byPid = new Map();
    for (const e of readEvents(files[m].events)) {
      if (!byPid.has(e.pid)) byPid.set(e.pid, { model: m, pid: e.pid });
      const l = byPid.get(e.pid);
      if (e.type === 'boot') l.spawned = e.spawned ?? e.t;
      else if (e.type === 'ready') l.ready = e.t;
      else if (e.type === 'first_request') l.firstRequest = e.t;
      else if (e.type === 'exit') l.exit = e.t;
    }
    launches.push(...byPid.values());
  }
  launches.sort((x, y) => x.spawned - y.spawned);
  const swaps = [];
  for (let i = 1; i < launches.length; i++) {
    const next = launches[i];
    const prev = launches[i - 1];
    if (prev.model === next.model || prev.exit === undefined || next.firstRequest === undefined) continue;
    const ownStart = next.ready - next.spawned;
    const total = next.firstRequest - prev.exit;
    swaps.push({
      from: prev.model,
      to: next.model,
      exitToFirstForwardMs: total,
      ownStartMs: ownStart,
      overheadMs: total - ownStart,
      exitToSpawnMs: next.spawned - prev.exit,
      readyToFirstForwardMs: next.firstRequest - next.ready,
    });
  }
  const all = [...results.a, ...results.b];
  const statuses = {};
  for (const r of all) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  const waits = all.map((r) => r.ms);
  const col = (k) => swaps.map((s) => s[k]);
  const out = {
    requestsPerClient: results.a.length,
    statuses,
    ok200: all.filter((r) => r.status === 200).length,
    requests: all.length,
    launches: Object.fromEntries(models.map((m) => [m, launches.filter((l) => l.model === m).length])),
    evictions: events.filter((e) => e.type === 'capacity_eviction').length,
    evictionsAfterInFlight: events.filter((e) => e.type === 'capacity_eviction' && e.details?.afterInFlight).length,
    swaps: swaps.length,
    waitP50Ms: median(waits),
    waitP99Ms: percentile(waits, 99),
    waitMaxMs: waits.length ? Math.max(...waits) : null,
    overheadP50Ms: median(col('overheadMs')),
    overheadMaxMs: swaps.length ? Math.max(...col('overheadMs')) : null,
    exitToSpawnP50Ms: median(col('exitToSpawnMs')),
    readyToFirstForwardP50Ms: median(col('readyToFirstForwardMs')),
    ownStartP50Ms: median(col('ownStartMs')),
    swapList: swaps,
  };
  log(
    `  ${out.requests} requests (${JSON.stringify(statuses)}), ${out.swaps} swaps, launches ${JSON.stringify(out.launches)}, ` +
      `wait p50 ${out.waitP50Ms?.toFixed(0)} / p99 ${out.waitP99Ms?.toFixed(0)} ms; swap overhead p50 ` +
      `${out.overheadP50Ms?.toFixed(1)} ms (exit → spawn ${out.exitToSpawnP50Ms?.toFixed(1)}, ready → forward ` +
      `${out.readyToFirstForwardP50Ms?.toFixed(1)}), max ${out.overheadMaxMs?.toFixed(1)} ms`,
  );
  return out;
}
