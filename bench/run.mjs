#!/usr/bin/env node
/**
 * Hestia benchmarks — one command: `npm run bench` (full) or `npm run bench -- --quick`.
 * See bench/README.md for what each scenario measures and how to read the figures.
 *
 * Layout of a run (everything on 127.0.0.1, every process stopped by PID at the end):
 *   core 0: wrk (load), the upstream nginx, the Node upstream, this orchestrator
 *   core 1: the gateway under test — Hestia's node process, or the reference nginx proxy
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startCaddy } from './lib/caddy.mjs';
import { getGatewayRoot, setBaseNodeArgs, setGatewayNodeArgs, setGatewayRoot, startHestia } from './lib/hestia.mjs';
import { buildDist, busyShare, cpuBusySnapshot, gatewayMode, machineNotes, missingTools } from './lib/machine.mjs';
import { freePort, HOST, waitHttp } from './lib/net.mjs';
import { startNginx } from './lib/nginx.mjs';
import {
  installCleanupHandlers,
  memKiB,
  pinningEnabled,
  pinSelf,
  setPinning,
  spawnTracked,
  stopAll,
  stopProc,
  wasInterrupted,
} from './lib/procs.mjs';
import { checkTargets, renderMarkdown, shortPath } from './lib/report.mjs';
import { median } from './lib/stats.mjs';
import { runColdStart } from './scenarios/coldstart.mjs';
import { runIdle } from './scenarios/idle.mjs';
import { runMemory } from './scenarios/memory.mjs';
import { runModels } from './scenarios/models.mjs';
import { runProfile } from './scenarios/profile.mjs';
import { DEFAULT_SERVICE_COUNTS, runServices } from './scenarios/services.mjs';
import { runSse } from './scenarios/sse.mjs';
import { runSwap, SWAP_HEALTH_INTERVAL_MS } from './scenarios/swap.mjs';
import { runSyscalls } from './scenarios/syscalls.mjs';
import { runThroughput, SMALL_BODY, verifyLeg } from './scenarios/throughput.mjs';

const ALL_SCENARIOS = [
  'throughput',
  'sse',
  'memory',
  'syscalls',
  'profile',
  'models',
  'services',
  'swap',
  'coldstart',
  'idle',
];
/** Run by default only when their tool is installed (they are extra insight, not targets). */
const OPTIONAL_TOOLS = { syscalls: 'strace' };
const QUICK_SCENARIOS = ['throughput', 'sse', 'models', 'services', 'swap', 'coldstart', 'idle'];
const ALL_LEGS = ['direct', 'nginx', 'caddy', 'nodeproxy', 'hestia'];
/** Legs run by default only when their program is installed (named in --legs, they must be). */
const OPTIONAL_LEGS = { caddy: 'caddy' };
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const README = fileURLToPath(new URL('./README.md', import.meta.url));
const NODE_UPSTREAM = fileURLToPath(new URL('./upstreams/node-upstream.mjs', import.meta.url));
const NODE_PROXY = fileURLToPath(new URL('./upstreams/node-proxy.mjs', import.meta.url));

const HELP = `Hestia benchmarks (bench/README.md)

  npm run bench                      full run: every scenario, 3 rounds × 10 s per cell
  npm run bench -- --quick           short run for development (~6 min): 1 round × 3 s,
                                     no 1 GiB transfer and no profile unless asked for
Scenarios (all by default; --quick: ${QUICK_SCENARIOS.join(',')}):
  throughput   small and 64 KiB bodies at each concurrency, every leg, interleaved rounds
  sse          20 events 50 ms apart through each leg: bursts kept separate, first-event delay
  memory       1 GiB each way through each leg but nginx: RSS must stay flat
  syscalls     strace -c on the gateway at c=32 (only when strace is installed)
  profile      node --cpu-prof of Hestia at c=32, small body, summarised
  models       routing by the body's model vs /services/{id}: extra CPU per request, 4 KiB body
  services     1, 100, 2,000 configured services: start-up, /metrics and /v1/metrics size and
               time, RSS step on scrape, hot-path CPU per request
  swap         two models that do not fit together, alternating clients: swaps, waits, and the
               gateway's overhead per swap (old model's exit → new model's first request, minus
               the new model's own start)
  coldstart    1,000 concurrent requests on a cold service, per launcher type (process, ssh,
               docker): launches, answers, the gateway's share, readiness → first forward
  idle         CPU of a gateway with 20 idle services

Options:
  --scenarios a,b      ${ALL_SCENARIOS.join(',')}
  --legs a,b           ${ALL_LEGS.join(',')} (throughput, sse, memory)
                       nodeproxy: the ~50-line node:http proxy (bench/upstreams/node-proxy.mjs),
                       the floor for any Node gateway; caddy: only when installed (apt-get install caddy)
  --rounds N           interleaved rounds per cell
  --duration S         seconds per wrk cell
  --concurrency list   default 1,32,256
  --bodies list        small,64k
  --cold-n N           concurrent requests in the cold-start burst (1000)
  --cold-launchers L   launcher legs of the cold start (process,ssh,docker; ssh and docker
                       need scripts/ci/setup-backends.sh, and are left out with a note without)
  --profile-body B     the body the profile scenario asks for: small (default) or 64k
  --transfer-mib N     size of each large transfer (1024)
  --service-counts l   services configured per gateway in the services scenario (${DEFAULT_SERVICE_COUNTS.join(',')})
  --swap-requests N    requests per client in the swap scenario (20; --quick 6)
  --swap-boot-ms N     how long each model takes to load in the swap scenario (200)
  --no-pin             do not pin processes to cores (taskset)
  --update-readme      put this run's tables into bench/README.md
  --keep-tmp           keep the temp dir (configs, logs) for inspection
  --gateway-root DIR   benchmark the gateway of another checkout (DIR/bin/hestia.mjs)
  --gateway-node-args "..."  extra node flags for the gateway (e.g. --gateway-node-args=--max-semi-space-size=4)
  --base-node-args "..."     the same for the base leg only (an A/B of node flags: --base-root
                       may be this checkout)
  --gateway-label TXT  what that checkout is, for the report (e.g. "branch proxy @ 9536836")
  --base-root DIR      also benchmark a second checkout (e.g. main) as leg "base", interleaved
                       with the others in the same run (throughput, sse, syscalls; coldstart and
                       idle alternate between the two gateways), for before/after figures
  --base-label TXT     what the base checkout is, for the report (e.g. "main @ 1f0aa69")
`;

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      scenarios: { type: 'string' },
      legs: { type: 'string' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      concurrency: { type: 'string' },
      bodies: { type: 'string' },
      'cold-n': { type: 'string' },
      'cold-launchers': { type: 'string' },
      'profile-body': { type: 'string' },
      'transfer-mib': { type: 'string' },
      'service-counts': { type: 'string' },
      'swap-requests': { type: 'string' },
      'swap-boot-ms': { type: 'string' },
      'no-pin': { type: 'boolean', default: false },
      'update-readme': { type: 'boolean', default: false },
      'keep-tmp': { type: 'boolean', default: false },
      'gateway-root': { type: 'string' },
      'gateway-label': { type: 'string' },
      'gateway-node-args': { type: 'string' },
      'base-node-args': { type: 'string' },
      'base-root': { type: 'string' },
      'base-label': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    process.exit(0);
  }
  const q = values.quick;
  const list = (v, dflt) =>
    v
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : dflt;
  const int = (v, dflt) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`not a positive number: ${v}`);
    return n;
  };
  const opts = {
    quick: q,
    scenarios: list(values.scenarios, q ? QUICK_SCENARIOS : ALL_SCENARIOS),
    legs: list(values.legs, ALL_LEGS),
    rounds: int(values.rounds, q ? 1 : 3),
    durationS: int(values.duration, q ? 3 : 10),
    warmupS: q ? 1 : 3,
    concurrency: list(values.concurrency, ['1', '32', '256']).map(Number),
    bodies: list(values.bodies, ['small', '64k']),
    sseRepeats: q ? 3 : 10,
    coldN: int(values['cold-n'], 1000),
    coldRepeats: q ? 1 : 3,
    // Launcher legs of the cold-start scenario; ssh and docker run when their back ends are up.
    coldLaunchers: list(values['cold-launchers'], ['process', 'ssh', 'docker']),
    coldBootMs: 500,
    coldHealthIntervalMs: 50,
    transferMiB: int(values['transfer-mib'], 1024),
    swapRequests: int(values['swap-requests'], q ? 6 : 20),
    swapBootMs: int(values['swap-boot-ms'], 200),
    serviceCounts: list(values['service-counts'], DEFAULT_SERVICE_COUNTS.map(String)).map((v) => int(v, 1)),
    idleS: q ? 5 : 10,
    // V8's memory reducer runs its few idle-time GCs some 8-25 s after start (and gives back the
    // young generation start-up grew): a one-off, not idle cost. The window starts after the
    // usual time; the report names any that still fall into it.
    idleSettleS: 15,
    profileS: q ? 5 : 15,
    profileBody: values['profile-body'] ?? 'small',
    syscallsS: q ? 3 : 5,
    pin: !values['no-pin'],
    updateReadme: values['update-readme'],
    keepTmp: values['keep-tmp'],
    gatewayRoot: values['gateway-root'],
    gatewayLabel: values['gateway-label'],
    baseRoot: values['base-root'] ? resolve(values['base-root']) : undefined,
    baseLabel: values['base-label'],
    gatewayNodeArgs: values['gateway-node-args'] ? values['gateway-node-args'].split(/\s+/).filter(Boolean) : [],
    baseNodeArgs: values['base-node-args'] !== undefined ? values['base-node-args'].split(/\s+/).filter(Boolean) : null,
  };
  if (!values.legs) opts.legs = opts.legs.filter((l) => !OPTIONAL_LEGS[l] || hasTool(OPTIONAL_LEGS[l]));
  if (!values.scenarios) {
    // Default lists skip an optional scenario whose tool is missing (named explicitly, it fails).
    opts.scenarios = opts.scenarios.filter((s) => !OPTIONAL_TOOLS[s] || hasTool(OPTIONAL_TOOLS[s]));
  }
  for (const s of opts.scenarios)
    if (!ALL_SCENARIOS.includes(s)) throw new Error(`unknown scenario '${s}' (${ALL_SCENARIOS.join(', ')})`);
  for (const l of opts.legs) if (!ALL_LEGS.includes(l)) throw new Error(`unknown leg '${l}' (${ALL_LEGS.join(', ')})`);
  for (const b of opts.bodies) if (!['small', '64k'].includes(b)) throw new Error(`unknown body '${b}' (small, 64k)`);
  return opts;
}

function hasTool(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;
}

/** Upstreams, the reference nginx proxy and the main Hestia gateway, plus the legs over them. */
async function startStack(ctx) {
  const { opts, tmpDir, log } = ctx;
  const need = new Set(opts.scenarios);
  const stack = { legs: [] };
  const upPort = await freePort();
  const nodePort = await freePort();
  const up = await startNginx({
    name: 'upstream',
    tmpDir,
    port: upPort,
    core: ctx.loadCore,
    vars: { SMALL_BODY },
    files: { '64k.bin': Buffer.alloc(64 * 1024, 'hestia-benchmark-64k-body\n') },
  });
  stack.upstream = up;
  stack.upstreamWorkerPid = up.workerPid;
  stack.upstreamUrl = `http://${HOST}:${upPort}`;
  log(`  upstream nginx on :${upPort} (worker ${up.workerPid})`);

  const nodeUp = spawnTracked('node-upstream', process.execPath, [NODE_UPSTREAM, '--port', String(nodePort)], {
    core: ctx.loadCore,
    stdinPipe: true,
    logFile: join(tmpDir, 'node-upstream.log'),
  });
  await waitHttp(`http://${HOST}:${nodePort}/small`, { timeoutMs: 10_000, isDead: () => nodeUp.exitInfo !== null });
  stack.nodeUpstream = nodeUp;
  stack.nodeUrl = `http://${HOST}:${nodePort}`;
  log(`  node upstream on :${nodePort}`);

  if (opts.legs.includes('direct')) {
    stack.legs.push({ id: 'direct', base: stack.upstreamUrl, node: `http://${HOST}:${nodePort}`, gatewayPid: null });
  }
  if (opts.legs.includes('nginx')) {
    const pxPort = await freePort();
    const px = await startNginx({
      name: 'proxy',
      tmpDir,
      port: pxPort,
      core: ctx.gatewayCore,
      vars: { UPSTREAM_PORT: upPort, NODE_PORT: nodePort },
    });
    stack.nginxProxy = px;
    stack.legs.push({
      id: 'nginx',
      base: `http://${HOST}:${pxPort}/services/bench`,
      node: `http://${HOST}:${pxPort}/services/stream`,
      gatewayPid: px.workerPid,
    });
    log(`  nginx proxy on :${pxPort} (worker ${px.workerPid})`);
  }
  if (opts.legs.includes('caddy')) {
    const cPort = await freePort();
    const cd = await startCaddy({
      tmpDir,
      port: cPort,
      core: ctx.gatewayCore,
      vars: { UPSTREAM_PORT: upPort, NODE_PORT: nodePort },
    });
    stack.caddy = cd;
    stack.legs.push({
      id: 'caddy',
      base: `http://${HOST}:${cPort}/services/bench`,
      node: `http://${HOST}:${cPort}/services/stream`,
      gatewayPid: cd.proc.pid,
    });
    log(`  caddy on :${cPort} (pid ${cd.proc.pid})`);
  }
  if (opts.legs.includes('nodeproxy')) {
    const npPort = await freePort();
    const np = spawnTracked(
      'node-proxy',
      process.execPath,
      [
        '--trace-gc',
        NODE_PROXY,
        '--port',
        String(npPort),
        '--bench',
        stack.upstreamUrl,
        '--stream',
        `http://${HOST}:${nodePort}`,
      ],
      { core: ctx.gatewayCore, stdinPipe: true, logFile: join(tmpDir, 'node-proxy.log') },
    );
    await waitHttp(`http://${HOST}:${npPort}/services/bench/small`, {
      timeoutMs: 10_000,
      isDead: () => np.exitInfo !== null,
    });
    stack.nodeProxy = np;
    stack.legs.push({
      id: 'nodeproxy',
      base: `http://${HOST}:${npPort}/services/bench`,
      node: `http://${HOST}:${npPort}/services/stream`,
      gatewayPid: np.pid,
      logFile: join(tmpDir, 'node-proxy.log'),
    });
    log(`  bare node proxy on :${npPort} (pid ${np.pid})`);
  }
  if (opts.legs.includes('hestia') && ['throughput', 'sse', 'memory', 'syscalls'].some((s) => need.has(s))) {
    const gw = await startHestia({
      name: 'main',
      tmpDir,
      core: ctx.gatewayCore,
      config: {
        services: {
          bench: { base_url: stack.upstreamUrl },
          stream: { base_url: `http://${HOST}:${nodePort}` },
        },
      },
    });
    stack.hestia = gw;
    stack.legs.push({
      id: 'hestia',
      base: `${gw.url}/services/bench`,
      node: `${gw.url}/services/stream`,
      gatewayPid: gw.proc.pid,
      logFile: gw.logFile,
    });
    log(`  hestia on :${gw.port} (pid ${gw.proc.pid})`);
    if (opts.baseRoot) {
      // The same config on the base checkout: an A/B within one run (--base-root).
      const bgw = await startHestia({
        name: 'base',
        tmpDir,
        core: ctx.gatewayCore,
        root: opts.baseRoot,
        base: true,
        config: {
          services: {
            bench: { base_url: stack.upstreamUrl },
            stream: { base_url: `http://${HOST}:${nodePort}` },
          },
        },
      });
      stack.base = bgw;
      stack.legs.push({
        id: 'base',
        base: `${bgw.url}/services/bench`,
        node: `${bgw.url}/services/stream`,
        gatewayPid: bgw.proc.pid,
        logFile: bgw.logFile,
      });
      log(`  base hestia (${opts.baseRoot}) on :${bgw.port} (pid ${bgw.proc.pid})`);
    }
  }

  // A leg that cannot serve the fixed bodies (e.g. the placeholder proxy answering 500) is
  // reported as unavailable rather than benchmarked: measuring error pages tells nothing.
  for (const leg of stack.legs) {
    const reasons = [];
    for (const body of opts.bodies) {
      const why = await verifyLeg(leg, body);
      if (why) reasons.push(why);
    }
    if (reasons.length) {
      leg.unavailable = reasons[0];
      log(`  leg ${leg.id} unavailable: ${leg.unavailable}`);
    }
  }
  return stack;
}

async function main() {
  const opts = parseOptions(process.argv.slice(2));
  const log = (s) => process.stderr.write(`${s}\n`);
  installCleanupHandlers(log);

  const missing = missingTools({ pin: opts.pin });
  if (missing.length) {
    log(`The benchmark needs tools that are not installed.\n  needs: apt-get install ${missing.join(' ')}`);
    process.exit(2);
  }
  setPinning(opts.pin);
  if (opts.gatewayRoot) setGatewayRoot(resolve(opts.gatewayRoot));
  setGatewayNodeArgs(opts.gatewayNodeArgs);
  setBaseNodeArgs(opts.baseNodeArgs);
  // Measure the built code, as an install runs it, never a silent tsx fallback (stale dist/).
  for (const root of [getGatewayRoot(), ...(opts.baseRoot ? [opts.baseRoot] : [])]) log(buildDist(root));
  const started = new Date();
  const stamp = started.toISOString().replace(/:/g, '-').replace(/\..*$/, '');
  const tmpDir = mkdtempSync(join(tmpdir(), 'hestia-bench-'));
  const ctx = { opts, log, tmpDir, stamp, loadCore: 0, gatewayCore: 1 };
  pinSelf(ctx.loadCore);

  const res = {
    startedAt: started.toISOString(),
    // Absolute paths (--gateway-root, --base-root) shortened: results are shared, paths are not.
    command: `npm run bench${
      process.argv.length > 2
        ? ` -- ${process.argv
            .slice(2)
            .map((a) => (a.startsWith('/') ? shortPath(a) : a))
            .join(' ')}`
        : ''
    }`,
    opts: { ...opts, baseRoot: shortPath(opts.baseRoot), gatewayRoot: shortPath(opts.gatewayRoot) },
    pinned: pinningEnabled(),
    machine: { ...machineNotes(), ...(opts.baseRoot ? { baseGatewayMode: gatewayMode(opts.baseRoot) } : {}) },
    hestiaStatus: 'not run',
    notes: [],
  };
  log(`Hestia bench (${opts.quick ? 'quick' : 'full'}): ${opts.scenarios.join(', ')}; temp dir ${tmpDir}`);
  const busy0 = cpuBusySnapshot();
  let failed = null;
  try {
    const need = new Set(opts.scenarios);
    if (need.has('syscalls') && !hasTool('strace'))
      throw new Error('the syscalls scenario needs: apt-get install strace');
    if (['throughput', 'sse', 'memory', 'syscalls', 'profile', 'models', 'services'].some((s) => need.has(s))) {
      log('starting upstreams and gateways');
      const stack = await startStack(ctx);
      const hestiaLeg = stack.legs.find((l) => l.id === 'hestia');
      res.hestiaStatus = !hestiaLeg
        ? 'not run'
        : hestiaLeg.unavailable
          ? `NOT RUN — the gateway did not proxy (${hestiaLeg.unavailable})`
          : 'ran against the real proxy';
      for (const l of stack.legs) if (l.unavailable) res.notes.push(`leg ${l.id} not measured: ${l.unavailable}`);

      if (need.has('throughput')) {
        log('throughput');
        res.throughput = await runThroughput(ctx, stack);
        res.machineBusyMedian = median(res.throughput.runs.map((r) => r.machineBusy));
        if (stack.hestia) res.hestiaHwmMiB = (memKiB(stack.hestia.proc.pid)?.hwmKiB ?? 0) / 1024;
        if (stack.base) res.baseHwmMiB = (memKiB(stack.base.proc.pid)?.hwmKiB ?? 0) / 1024;
        if (stack.nginxProxy) res.nginxHwmMiB = (memKiB(stack.nginxProxy.workerPid)?.hwmKiB ?? 0) / 1024;
        if (stack.nodeProxy) res.nodeProxyHwmMiB = (memKiB(stack.nodeProxy.pid)?.hwmKiB ?? 0) / 1024;
        if (stack.caddy) res.caddyHwmMiB = (memKiB(stack.caddy.proc.pid)?.hwmKiB ?? 0) / 1024;
      }
      if (need.has('sse')) {
        log('sse');
        res.sse = await runSse(ctx, stack);
      }
      if (need.has('memory')) {
        log(`memory (${opts.transferMiB} MiB each way)`);
        res.memory = await runMemory(ctx, stack);
      }
      if (need.has('syscalls')) {
        log('syscalls per request (strace -c, c=32)');
        res.syscalls = await runSyscalls(ctx, stack);
      }
      // The other gateways use core 1 from here on: stop the idle ones first.
      if (stack.hestia) {
        const exit = await stack.hestia.stop();
        if (exit?.signal === 'SIGKILL' || (exit?.code !== 0 && exit?.code !== null)) {
          res.notes.push(`the main gateway did not exit cleanly on SIGTERM (${JSON.stringify(exit)})`);
        }
      }
      if (stack.base) await stack.base.stop();
      if (stack.nginxProxy) await stopProc(stack.nginxProxy.proc);
      if (stack.caddy) await stopProc(stack.caddy.proc);
      if (stack.nodeProxy) await stopProc(stack.nodeProxy);
      if (need.has('profile')) {
        // The profile starts its own gateway: it only needs the main one not to have failed.
        if (!hestiaLeg?.unavailable) {
          log('profile (hestia, small, c=32)');
          res.profile = await runProfile(ctx, stack);
        } else res.notes.push('profile skipped: the Hestia leg did not proxy');
      }
      if (need.has('models')) {
        log('models (routing by model vs /services/{id}, 4 KiB chat body, c=32)');
        res.models = await runModels(ctx, stack);
      }
      if (need.has('services')) {
        log(`services (${opts.serviceCounts.join(', ')} configured services: start-up, scrapes, hot-path CPU)`);
        res.services = await runServices(ctx, stack);
      }
      await stopProc(stack.nodeUpstream);
      await stopProc(stack.upstream.proc);
    }
    if (need.has('swap')) {
      log(
        `swap (two models that do not fit together, ${opts.swapRequests} requests per client, load ${opts.swapBootMs} ms, health_interval_ms ${SWAP_HEALTH_INTERVAL_MS})`,
      );
      res.swap = await runSwap(ctx);
    }
    if (need.has('coldstart')) {
      log(`cold start (${opts.coldN} concurrent requests)`);
      res.coldstart = await runColdStart(ctx);
      if (ctx.coldLeftRunning)
        res.notes.push(
          `the gateway left ${ctx.coldLeftRunning} cold child process(es) running after SIGTERM (killed by the harness)`,
        );
    }
    if (need.has('idle')) {
      log('idle');
      res.idle = await runIdle(ctx);
      if (opts.baseRoot) res.idleBase = await runIdle(ctx, opts.baseRoot);
    }
  } catch (err) {
    if (wasInterrupted()) await new Promise(() => {}); // the signal handler is cleaning up and exits
    failed = err;
    log(`\nFAILED: ${err.stack ?? err}`);
    res.notes.push(`run failed: ${err.message}`);
  } finally {
    await stopAll();
  }
  res.machineBusyWholeRun = busyShare(busy0, cpuBusySnapshot());
  res.machine.loadavgAtEnd = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  if (res.machineBusyWholeRun !== null) {
    res.notes.push(
      `machine load: load average ${res.machine.loadavgAtStart} at start, ${res.machine.loadavgAtEnd} at end; ` +
        `cores busy ${(res.machineBusyWholeRun * 100).toFixed(0)} % over the whole run (this benchmark included)`,
    );
  }
  res.targets = checkTargets(res);

  mkdirSync(RESULTS_DIR, { recursive: true });
  const base = join(RESULTS_DIR, `${stamp}${opts.quick ? '-quick' : ''}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(res, null, 2)}\n`);
  const md = renderMarkdown(res);
  writeFileSync(`${base}.md`, md);
  process.stdout.write(`${md}\n`);
  log(`results: ${base}.md and .json`);
  if (opts.updateReadme) updateReadme(md, `${base}.md`);
  if (opts.keepTmp) log(`temp dir kept: ${tmpDir}`);
  else rmSync(tmpDir, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
}

/** Replace the block between the markers in bench/README.md with this run's report. */
function updateReadme(md, file) {
  const START = '<!-- bench:latest:start -->';
  const END = '<!-- bench:latest:end -->';
  const text = readFileSync(README, 'utf8');
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) {
    process.stderr.write('README has no bench:latest markers; not updated\n');
    return;
  }
  const body = md.replace(/^# .*\n/, '').replace(/^## /gm, '### ');
  const rel = file.replace(/^.*\/bench\//, '');
  writeFileSync(README, `${text.slice(0, a + START.length)}\n_From \`${rel}\`._\n${body}\n${text.slice(b)}`);
  process.stderr.write('bench/README.md updated\n');
}

await main();
