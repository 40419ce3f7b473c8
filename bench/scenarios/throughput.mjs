/**
 * Throughput and latency: small JSON and 64 KiB bodies at several concurrencies, wrk against
 * each leg (direct, nginx, hestia) in interleaved rounds — every round runs every cell on every
 * leg, the leg order rotating — so a slow minute on this shared machine hits all legs alike.
 *
 * Per cell we record wrk's numbers plus, from /proc, the CPU time the gateway process (Hestia's
 * node process, or nginx's worker) spent during the cell divided by the requests completed, the
 * same for the upstream's worker, and the gateway's sampled peak RSS.
 */

import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { busyShare, coreBusy, cpuBusySnapshot, perCoreSnapshot } from '../lib/machine.mjs';
import { httpGet, sleep } from '../lib/net.mjs';
import { cpuMicros, startRssSampler } from '../lib/procs.mjs';
import { median, sum } from '../lib/stats.mjs';
import { runWrk } from '../lib/wrk.mjs';

/** The small JSON body, served by the upstream nginx (`return 200 '...'`). */
export const SMALL_BODY = '{"ok":true,"service":"bench","message":"hello from the benchmark upstream","n":42}';

export const BODIES = {
  small: { path: '/small', bytes: Buffer.byteLength(SMALL_BODY) },
  '64k': { path: '/64k', bytes: 64 * 1024 },
};

/** Check that a leg answers 200 with the expected body; returns null or the reason it cannot run. */
export async function verifyLeg(leg, body) {
  const expectedBytes = BODIES[body].bytes;
  try {
    const r = await httpGet(leg.base + BODIES[body].path, { timeoutMs: 5000 });
    if (r.status !== 200) {
      return `HTTP ${r.status} for ${BODIES[body].path}: ${r.body.toString('utf8').slice(0, 160)}`;
    }
    if (r.body.length !== expectedBytes) return `body of ${r.body.length} bytes, expected ${expectedBytes}`;
    return null;
  } catch (err) {
    return `request failed: ${err.code ?? err.message}`;
  }
}

export async function runThroughput(ctx, stack) {
  const { opts, log } = ctx;
  const legs = stack.legs.filter((l) => !l.unavailable);
  const cells = [];
  for (const body of opts.bodies) for (const c of opts.concurrency) cells.push({ body, c });

  // Warm-up: JIT, connection pools and page cache, on every leg, not measured.
  log(`  warm-up (${opts.warmupS}s per leg and body)`);
  for (const leg of legs) {
    for (const body of opts.bodies) {
      await runWrk({ url: leg.base + BODIES[body].path, connections: 32, durationS: opts.warmupS, core: ctx.loadCore });
    }
  }

  const runs = [];
  for (let round = 0; round < opts.rounds; round++) {
    for (let ci = 0; ci < cells.length; ci++) {
      const { body, c } = cells[ci];
      const k = (round + ci) % legs.length;
      const order = [...legs.slice(k), ...legs.slice(0, k)];
      for (const leg of order) {
        const r = await measureCell(ctx, stack, leg, body, c);
        runs.push({ round, ...r });
        log(
          `  round ${round + 1}/${opts.rounds} ${body.padEnd(5)} c=${String(c).padEnd(3)} ${leg.id.padEnd(6)} ` +
            `${Math.round(r.rps).toString().padStart(6)} req/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms` +
            (r.gwCpuUsPerReq !== null ? `  gw ${r.gwCpuUsPerReq.toFixed(0)} µs/req` : '') +
            (r.errors || r.nonOk ? `  errors ${r.errors} non-2xx ${r.nonOk}` : ''),
        );
        await sleep(200); // let closed connections drain before the next cell
      }
    }
  }
  return { runs, summary: summarise(runs, legs, cells) };
}

/** A Node leg's log size now (it runs with --trace-gc; `majorGcsSince` reads what came after). */
function logSize(file) {
  try {
    return statSync(file).size;
  } catch {
    return null;
  }
}

/** Mark-compact GCs V8 logged (--trace-gc) in `file` after byte `from`. */
function majorGcsSince(file, from) {
  if (from === null) return null;
  try {
    const fd = openSync(file, 'r');
    try {
      const size = fstatSync(fd).size;
      const buf = Buffer.alloc(Math.max(0, size - from));
      readSync(fd, buf, 0, buf.length, from);
      return buf.toString('latin1').split('Mark-Compact').length - 1;
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
}

async function measureCell(ctx, stack, leg, body, c) {
  const gwPid = leg.gatewayPid ?? null;
  const upPid = stack.upstreamWorkerPid;
  const sampler = gwPid ? startRssSampler([gwPid], 100) : null;
  const busy0 = cpuBusySnapshot();
  const cores0 = perCoreSnapshot();
  const t0 = performance.now();
  const gw0 = gwPid ? cpuMicros(gwPid) : null;
  const up0 = cpuMicros(upPid);
  const log0 = leg.logFile ? logSize(leg.logFile) : null;
  const w = await runWrk({
    url: leg.base + BODIES[body].path,
    connections: c,
    durationS: ctx.opts.durationS,
    core: ctx.loadCore,
  });
  const gw1 = gwPid ? cpuMicros(gwPid) : null;
  const up1 = cpuMicros(upPid);
  const wallUs = (performance.now() - t0) * 1000;
  const busy = busyShare(busy0, cpuBusySnapshot());
  const cores1 = perCoreSnapshot();
  const load = coreBusy(cores0, cores1, ctx.loadCore);
  const gwc = coreBusy(cores0, cores1, ctx.gatewayCore);
  const rss = sampler ? sampler.stop().get(gwPid) : null;
  // The log reaches its file through this process's pipe: give the last lines a moment.
  if (log0 !== null) await sleep(50);
  return {
    leg: leg.id,
    body,
    c,
    ...w,
    gwCpuUs: gwPid ? gw1 - gw0 : null,
    gwCpuUsPerReq: gwPid && w.requests > 0 ? (gw1 - gw0) / w.requests : null,
    upCpuUs: up1 - up0,
    upCpuUsPerReq: w.requests > 0 ? (up1 - up0) / w.requests : null,
    gwRssMaxKiB: rss ? rss.maxKiB : null,
    // Node legs only: V8 mark-compact GCs during the cell (each stalls every request in flight).
    gwMajorGcs: leg.logFile ? majorGcsSince(leg.logFile, log0) : null,
    machineBusy: busy,
    // How busy each core was; on the gateway's core, what others (not the gateway) used. A
    // load core near 100 % means wrk + upstream, not the gateway, set the req/s ceiling.
    loadCoreBusy: load.busy,
    gwCoreBusy: gwc.busy,
    gwCoreOthers: gwc.busy === null ? null : Math.max(0, gwc.busy - (gwPid ? (gw1 - gw0) / wallUs : 0)),
    steal: load.steal === null ? null : (load.steal + (gwc.steal ?? 0)) / 2,
  };
}

function summarise(runs, legs, cells) {
  const out = [];
  for (const { body, c } of cells) {
    for (const leg of legs) {
      const rs = runs.filter((r) => r.body === body && r.c === c && r.leg === leg.id);
      if (rs.length === 0) continue;
      const requests = sum(rs.map((r) => r.requests));
      out.push({
        body,
        c,
        leg: leg.id,
        rounds: rs.length,
        // Medians across rounds: robust to one round disturbed by a colleague's build.
        rps: median(rs.map((r) => r.rps)),
        p50Ms: median(rs.map((r) => r.p50Ms)),
        p99Ms: median(rs.map((r) => r.p99Ms)),
        // CPU per request over all rounds together (more ticks, less quantisation).
        gwCpuUsPerReq: leg.gatewayPid ? sum(rs.map((r) => r.gwCpuUs)) / requests : null,
        upCpuUsPerReq: sum(rs.map((r) => r.upCpuUs)) / requests,
        gwRssMaxMiB: leg.gatewayPid ? Math.max(...rs.map((r) => r.gwRssMaxKiB ?? 0)) / 1024 : null,
        gwMajorGcsPerS: rs.every((r) => r.gwMajorGcs != null)
          ? sum(rs.map((r) => r.gwMajorGcs)) / sum(rs.map((r) => r.durationS))
          : null,
        requests,
        errors: sum(rs.map((r) => r.errors)),
        nonOk: sum(rs.map((r) => r.nonOk)),
        machineBusy: median(rs.map((r) => r.machineBusy)),
        loadCoreBusy: median(rs.map((r) => r.loadCoreBusy)),
        gwCoreBusy: median(rs.map((r) => r.gwCoreBusy)),
        gwCoreOthers: median(rs.map((r) => r.gwCoreOthers)),
      });
    }
  }
  return out;
}
