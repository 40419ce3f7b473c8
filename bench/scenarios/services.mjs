/**
 * Cost as configuration grows: one gateway per service count (1, 100, 2,000 by default), all
 * started at once and pinned to the gateway core. Service `s0` proxies to the upstream nginx;
 * every other service is a `process` launcher that is never started (idle, cold).
 *
 * Per gateway:
 * - start-up: spawn → `/healthz` answering 200, and RSS then;
 * - hot path: gateway CPU per request for small bodies at c=32 on `s0`, wrk in interleaved rounds
 *   across the gateways (the figure that must not move with the number of services);
 * - scrapes after that traffic: `/metrics` and `/v1/metrics` — bytes, time (median of 5), and RSS
 *   before the first scrape and after the last (a step here means per-service allocations at
 *   scrape time).
 */
import { fileURLToPath } from 'node:url';
import { startHestia } from '../lib/hestia.mjs';
import { HOST, httpGet, sleep } from '../lib/net.mjs';
import { cpuMicros, memKiB, pinnedArgv } from '../lib/procs.mjs';
import { median, sum } from '../lib/stats.mjs';
import { runWrk } from '../lib/wrk.mjs';
import { BODIES } from './throughput.mjs';

const CHILD = fileURLToPath(new URL('../upstreams/cold-child.mjs', import.meta.url));
export const DEFAULT_SERVICE_COUNTS = [1, 100, 2000];

/** A config with `n` services: `s0` → the upstream, the rest never-started process launchers. */
export function servicesConfig(n, upstreamUrl, loadCore) {
  const services = { s0: { base_url: upstreamUrl } };
  for (let i = 1; i < n; i++) {
    // Ports that nothing listens on: these services are never started by the scenario.
    const port = 40_000 + (i % 20_000);
    const [cmd, args] = pinnedArgv(loadCore, process.execPath, [CHILD, '--port', String(port)]);
    services[`s${i}`] = {
      base_url: `http://${HOST}:${port}`,
      launcher: { type: 'process', command: [cmd, ...args] },
    };
  }
  return { services };
}

async function timedGet(url) {
  const t0 = performance.now();
  const r = await httpGet(url, { timeoutMs: 30_000 });
  const ms = performance.now() - t0;
  if (r.status !== 200) throw new Error(`${url}: HTTP ${r.status}`);
  return { ms, bytes: r.body.length };
}

export async function runServices(ctx, stack) {
  const { opts, log, tmpDir } = ctx;
  const counts = opts.serviceCounts ?? DEFAULT_SERVICE_COUNTS;
  const gws = [];
  try {
    for (const n of counts) {
      const t0 = performance.now();
      const gw = await startHestia({
        name: `services-${n}`,
        config: servicesConfig(n, stack.upstreamUrl, ctx.loadCore),
        tmpDir,
        core: ctx.gatewayCore,
      });
      const startMs = performance.now() - t0;
      const rssStartMiB = (memKiB(gw.proc.pid)?.rssKiB ?? 0) / 1024;
      gws.push({ n, gw, startMs, rssStartMiB, runs: [] });
      log(
        `  ${String(n).padStart(5)} services: healthy after ${startMs.toFixed(0)} ms, RSS ${rssStartMiB.toFixed(1)} MiB`,
      );
    }
    const url = (g) => `${g.gw.url}/services/s0${BODIES.small.path}`;
    for (const g of gws) {
      await runWrk({ url: url(g), connections: 32, durationS: opts.warmupS, core: ctx.loadCore });
    }
    for (let round = 0; round < opts.rounds; round++) {
      const k = round % gws.length;
      for (const g of [...gws.slice(k), ...gws.slice(0, k)]) {
        const c0 = cpuMicros(g.gw.proc.pid);
        const w = await runWrk({ url: url(g), connections: 32, durationS: opts.durationS, core: ctx.loadCore });
        const cpuUs = cpuMicros(g.gw.proc.pid) - c0;
        g.runs.push({ round, ...w, cpuUs });
        log(
          `  round ${round + 1}/${opts.rounds} ${String(g.n).padStart(5)} services ` +
            `${Math.round(w.rps).toString().padStart(6)} req/s  gw ${(cpuUs / Math.max(1, w.requests)).toFixed(1)} µs/req`,
        );
        await sleep(200);
      }
    }
    const out = [];
    for (const g of gws) {
      const pid = g.gw.proc.pid;
      const rssBeforeScrapeMiB = (memKiB(pid)?.rssKiB ?? 0) / 1024;
      const prom = [];
      const json = [];
      for (let i = 0; i < 5; i++) {
        prom.push(await timedGet(`${g.gw.url}/metrics`));
        json.push(await timedGet(`${g.gw.url}/v1/metrics`));
      }
      const rssAfterScrapeMiB = (memKiB(pid)?.rssKiB ?? 0) / 1024;
      const row = {
        services: g.n,
        startMs: g.startMs,
        rssStartMiB: g.rssStartMiB,
        rps: median(g.runs.map((r) => r.rps)),
        gwCpuUsPerReq: sum(g.runs.map((r) => r.cpuUs)) / Math.max(1, sum(g.runs.map((r) => r.requests))),
        errors: sum(g.runs.map((r) => r.errors + r.nonOk)),
        metricsBytes: prom.at(-1).bytes,
        metricsMs: median(prom.map((p) => p.ms)),
        metricsFirstMs: prom[0].ms,
        jsonBytes: json.at(-1).bytes,
        jsonMs: median(json.map((p) => p.ms)),
        jsonFirstMs: json[0].ms,
        rssBeforeScrapeMiB,
        rssAfterScrapeMiB,
      };
      out.push(row);
      log(
        `  ${String(g.n).padStart(5)} services: /metrics ${(row.metricsBytes / 1024).toFixed(1)} KiB in ${row.metricsMs.toFixed(1)} ms, ` +
          `/v1/metrics ${(row.jsonBytes / 1024).toFixed(1)} KiB in ${row.jsonMs.toFixed(1)} ms, ` +
          `RSS ${rssBeforeScrapeMiB.toFixed(1)} → ${rssAfterScrapeMiB.toFixed(1)} MiB`,
      );
    }
    return { rows: out };
  } finally {
    for (const g of gws) await g.gw.stop();
  }
}
