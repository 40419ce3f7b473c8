/**
 * Idle CPU: a gateway with 20 configured services (10 plain, 10 with a `process` launcher and a
 * health_url; none started) and no traffic. CPU time from /proc over the window, as a share of
 * one core. A gateway that polls, runs timers per service or leaks intervals shows up here.
 */
import { readFileSync, statSync } from 'node:fs';
import { startHestia } from '../lib/hestia.mjs';
import { freePort, HOST, sleep } from '../lib/net.mjs';
import { CLK_TCK, cpuMicros, memKiB } from '../lib/procs.mjs';

/** `root`: another checkout (the --base-root leg); default the gateway under test. */
export async function runIdle(ctx, root) {
  const { opts, tmpDir, log } = ctx;
  const services = {};
  for (let i = 0; i < 20; i++) {
    // Ports nothing listens on: the gateway must not be probing them while idle.
    const port = await freePort();
    services[`idle-${String(i).padStart(2, '0')}`] =
      i < 10
        ? { base_url: `http://${HOST}:${port}`, idle_timeout_ms: 60_000 }
        : {
            base_url: `http://${HOST}:${port}`,
            health_url: `http://${HOST}:${port}/health`,
            idle_timeout_ms: 60_000,
            launcher: { type: 'process', command: [process.execPath, '-e', 'setTimeout(() => {}, 1000)'] },
          };
  }
  const gw = await startHestia({
    name: root ? 'idle-base' : 'idle',
    config: { services },
    tmpDir,
    core: ctx.gatewayCore,
    ...(root ? { root, base: true } : {}),
  });
  try {
    await sleep(opts.idleSettleS * 1000); // start-up work (JIT, first timers, V8's memory reducer) is not idle
    const c0 = cpuMicros(gw.proc.pid);
    const logAt = statSync(gw.logFile).size;
    const t0 = performance.now();
    await sleep(opts.idleS * 1000);
    const c1 = cpuMicros(gw.proc.pid);
    // The gateway runs with --trace-gc: its GCs inside the window say what CPU it did use.
    const gcLines = readFileSync(gw.logFile).subarray(logAt).toString('utf8').split('\n');
    const wallUs = (performance.now() - t0) * 1000;
    const mem = memKiB(gw.proc.pid);
    const res = {
      services: 20,
      windowS: opts.idleS,
      cpuPctOfCore: ((c1 - c0) / wallUs) * 100,
      // /proc counts in ticks: below one tick the figure is only "less than this".
      resolutionPct: (1e6 / CLK_TCK / wallUs) * 100,
      rssMiB: mem ? mem.rssKiB / 1024 : null,
      scavenges: gcLines.filter((l) => / ms: Scavenge/.test(l)).length,
      markCompacts: gcLines.filter((l) => / ms: Mark-Compact/.test(l)).length,
    };
    log(
      `  idle${root ? ' (base)' : ''}: ${res.cpuPctOfCore.toFixed(2)} % of a core over ${opts.idleS}s (±${res.resolutionPct.toFixed(2)}), RSS ${res.rssMiB?.toFixed(0)} MiB, GCs ${res.scavenges} scavenges + ${res.markCompacts} mark-compacts`,
    );
    return res;
  } finally {
    await gw.stop();
  }
}
