/**
 * Model routing overhead: the same 4 KiB chat body POSTed to the same upstream through
 * `/services/bench/v1/chat/completions` (routed by the path) and `/v1/chat/completions` (routed
 * by the body's `model`: the body is read up to the cap, parsed, then replayed), wrk at c=32 in
 * interleaved rounds against one gateway of its own pinned to the gateway core. The figure is
 * the gateway's CPU per request on each path, and the difference: what routing by model costs.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHestia } from '../lib/hestia.mjs';
import { cpuMicros } from '../lib/procs.mjs';
import { median, sum } from '../lib/stats.mjs';
import { runWrk } from '../lib/wrk.mjs';

const POST_LUA = fileURLToPath(new URL('../wrk/post-body.lua', import.meta.url));
const REPORT_LUA = fileURLToPath(new URL('../wrk/report.lua', import.meta.url));

/** A chat request of exactly `bytes` bytes (the user message pads it). */
export function chatBody(bytes) {
  const head = { model: 'bench-model', stream: false, messages: [{ role: 'user', content: '' }] };
  const empty = Buffer.byteLength(JSON.stringify(head));
  head.messages[0].content = 'x'.repeat(Math.max(0, bytes - empty));
  return JSON.stringify(head);
}

export async function runModels(ctx, stack) {
  const { opts, log, tmpDir } = ctx;
  const upstream = stack.nodeUrl;
  const bodyFile = join(tmpDir, 'chat-4k.json');
  writeFileSync(bodyFile, chatBody(4096));
  const gw = await startHestia({
    name: 'models',
    config: { services: { bench: { base_url: upstream, models: ['bench-model'] } } },
    tmpDir,
    core: ctx.gatewayCore,
  });
  const paths = { services: '/services/bench/v1/chat/completions', models: '/v1/chat/completions' };
  const env = { BENCH_BODY_FILE: bodyFile, BENCH_REPORT_LUA: REPORT_LUA };
  const wrk = (path, durationS) =>
    runWrk({ url: gw.url + path, connections: 32, durationS, core: ctx.loadCore, script: POST_LUA, env });
  try {
    for (const path of Object.values(paths)) await wrk(path, opts.warmupS);
    const runs = [];
    for (let round = 0; round < opts.rounds; round++) {
      const order = round % 2 === 0 ? ['services', 'models'] : ['models', 'services'];
      for (const leg of order) {
        const c0 = cpuMicros(gw.proc.pid);
        const w = await wrk(paths[leg], opts.durationS);
        const cpuUs = cpuMicros(gw.proc.pid) - c0;
        runs.push({ round, leg, ...w, cpuUs });
        log(
          `  round ${round + 1}/${opts.rounds} ${leg.padEnd(8)} ${Math.round(w.rps).toString().padStart(6)} req/s  ` +
            `p50 ${w.p50Ms.toFixed(2)} ms  gw ${(cpuUs / Math.max(1, w.requests)).toFixed(1)} µs/req` +
            (w.errors || w.nonOk ? `  errors ${w.errors} non-2xx ${w.nonOk}` : ''),
        );
      }
    }
    const summary = {};
    for (const leg of Object.keys(paths)) {
      const rs = runs.filter((r) => r.leg === leg);
      summary[leg] = {
        rps: median(rs.map((r) => r.rps)),
        p50Ms: median(rs.map((r) => r.p50Ms)),
        p99Ms: median(rs.map((r) => r.p99Ms)),
        gwCpuUsPerReq: sum(rs.map((r) => r.cpuUs)) / Math.max(1, sum(rs.map((r) => r.requests))),
        errors: sum(rs.map((r) => r.errors)),
        nonOk: sum(rs.map((r) => r.nonOk)),
      };
    }
    summary.addedCpuUsPerReq = summary.models.gwCpuUsPerReq - summary.services.gwCpuUsPerReq;
    log(`  routing by model adds ${summary.addedCpuUsPerReq.toFixed(1)} µs CPU per request (4 KiB chat body)`);
    return { bodyBytes: 4096, runs, summary };
  } finally {
    await gw.stop();
  }
}
