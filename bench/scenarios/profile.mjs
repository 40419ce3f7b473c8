/**
 * Profile: a separate gateway run with `node --cpu-prof` under wrk at c=32 with the small body
 * (or `--profile-body 64k`),
 * stopped with SIGTERM so V8 writes the profile; then summarised (bench/lib/cpuprofile.mjs).
 * The profile is kept under bench/results/tmp/ (git-ignored) for Chrome DevTools / speedscope.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { summariseProfile } from '../lib/cpuprofile.mjs';
import { startHestia } from '../lib/hestia.mjs';
import { runWrk } from '../lib/wrk.mjs';
import { BODIES } from './throughput.mjs';

const KEEP_DIR = fileURLToPath(new URL('../results/tmp/', import.meta.url));

export async function runProfile(ctx, stack) {
  const { opts, tmpDir, log } = ctx;
  const profDir = join(tmpDir, 'cpuprof');
  mkdirSync(profDir, { recursive: true });
  const gw = await startHestia({
    name: 'profile',
    config: { services: { bench: { base_url: stack.upstreamUrl } } },
    tmpDir,
    core: ctx.gatewayCore,
    cpuProfDir: profDir,
  });
  let w;
  let tWrkStart;
  let tWrkEnd;
  try {
    const body = BODIES[opts.profileBody];
    if (!body) throw new Error(`--profile-body: ${opts.profileBody} is not one of ${Object.keys(BODIES).join(', ')}`);
    const url = `${gw.url}/services/bench${body.path}`;
    await runWrk({ url, connections: 32, durationS: opts.warmupS, core: ctx.loadCore });
    tWrkStart = performance.now();
    w = await runWrk({ url, connections: 32, durationS: opts.profileS, core: ctx.loadCore });
    tWrkEnd = performance.now();
  } finally {
    await gw.stop();
  }
  // The profile ends when the gateway exits; the measured run ended `tail` ms before that.
  const tail = performance.now() - (tWrkEnd ?? performance.now());
  const windowBeforeEndMs = tWrkEnd ? [tail, tail + (tWrkEnd - tWrkStart)] : null;
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error(`no .cpuprofile written in ${profDir} (did the gateway exit cleanly on SIGTERM?)`);
  mkdirSync(KEEP_DIR, { recursive: true });
  const kept = join(KEEP_DIR, `${ctx.stamp}-hestia-c32-${opts.profileBody}.cpuprofile`);
  copyFileSync(join(profDir, file), kept);
  const summary = summariseProfile(JSON.parse(readFileSync(kept, 'utf8')), { top: 25, windowBeforeEndMs });
  log(`  profiled ${w.requests} requests (${Math.round(w.rps)} req/s with the profiler on); kept ${kept}`);
  // CPU per request as the profile saw it (profiler overhead included).
  // Repository-relative in the results (they are shared; this machine's paths are not).
  return {
    file: `bench/results/tmp/${basename(kept)}`,
    requests: w.requests,
    rps: w.rps,
    busyUsPerReq: (summary.busyMs * 1000) / w.requests,
    summary,
  };
}
