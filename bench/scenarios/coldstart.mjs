/**
 * Cold-start burst: N (1,000) concurrent requests hit a cold service whose `process` launcher
 * starts bench/upstreams/cold-child.mjs. Judged from the child's side and the client's side:
 *
 * - launches: PIDs the child appended to its pid file (must be exactly 1);
 * - answers: how many of the N got 200 (must be N);
 * - readiness notice: from the moment the child's /health starts answering 200 (`ready`) to the
 *   first request the gateway forwards (`first_request`); also from the first 200 the child
 *   actually sent to a probe (`health_2xx`) to that forward, which is the gateway's own delay
 *   once its probe succeeded;
 * - extra latency after readiness: per request, client completion time minus `ready`, p50/p99.
 *
 * Every repetition uses a fresh gateway and measures two starts in it: the first after its boot,
 * and a later one (the service stopped through the API, then the same burst again), which is
 * what a gateway that has been up a while pays. The gateway's share is taken from its own
 * clock for the launch (`service_ready`'s `launchAfterMs` + `launchTookMs`: start begun → the
 * spawn returned) and from the child's side for noticing readiness (first health 2xx → first
 * forwarded request).
 */
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHestia } from '../lib/hestia.mjs';
import { freePort, HOST, httpGet, nowMs, sleep, waitHttp } from '../lib/net.mjs';
import { adoptPid, isAlive, pinnedArgv, spawnTracked, stopProc } from '../lib/procs.mjs';
import { median, percentile } from '../lib/stats.mjs';

const CHILD = fileURLToPath(new URL('../upstreams/cold-child.mjs', import.meta.url));

function burst(url, n, timeoutMs) {
  // One connection per request, all opened at once: the worst case for the queue.
  const agent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const one = () =>
    new Promise((resolve) => {
      const t0 = nowMs();
      let tConnect = null;
      const done = (r) => resolve({ t0, t1: nowMs(), connectMs: tConnect === null ? null : tConnect - t0, ...r });
      const req = http.get(url, { agent }, (res) => {
        res.resume();
        res.on('end', () => done({ status: res.statusCode, coldHeader: res.headers['x-hestia-cold-start'] }));
        res.on('error', (err) => done({ status: 0, error: err.code ?? err.message }));
      });
      // Connect time: a SYN dropped by a full listen backlog is retried after ~1 s.
      req.on('socket', (sock) => sock.once('connect', () => (tConnect = nowMs())));
      req.setTimeout(timeoutMs, () => req.destroy(new Error('client timeout')));
      req.on('error', (err) => done({ status: 0, error: err.code ?? err.message }));
    });
  return Promise.all(Array.from({ length: n }, one)).finally(() => agent.destroy());
}

/** `root`: another checkout (the --base-root leg); default the gateway under test. */
export async function runColdStartOnce(ctx, rep, root) {
  const { opts, tmpDir } = ctx;
  const tag = root ? `base-${rep}` : String(rep);
  const port = await freePort();
  const pidFile = join(tmpDir, `cold-${tag}.pids`);
  const eventsFile = join(tmpDir, `cold-${tag}.events`);
  // The child runs on the load/upstream core, like every upstream here (taskset execs, so the
  // PID the launcher sees is the child's own).
  const [cmd, args] = pinnedArgv(ctx.loadCore, process.execPath, [
    CHILD,
    '--port',
    String(port),
    '--pid-file',
    pidFile,
    '--events-file',
    eventsFile,
    '--boot-ms',
    String(opts.coldBootMs),
  ]);
  const config = {
    services: {
      cold: {
        base_url: `http://${HOST}:${port}`,
        health_url: `http://${HOST}:${port}/health`,
        health_interval_ms: opts.coldHealthIntervalMs,
        // Room for the whole burst: the scenario measures the start, not the queue limit.
        queue_size: opts.coldN * 2,
        request_timeout_seconds: 60,
        start_timeout_ms: 30_000,
        launcher: { type: 'process', command: [cmd, ...args], stop_timeout_ms: 3000 },
      },
    },
  };
  const gw = await startHestia({
    name: `cold-${tag}`,
    config,
    tmpDir,
    core: ctx.gatewayCore,
    ...(root ? { root, base: true } : {}),
  });
  const starts = [];
  let launches = [];
  try {
    // Two starts per gateway: the first after its boot (nothing has run in it yet), then a
    // later one (stopped through the API, started again by the same burst), which is what a
    // gateway that has been up a while pays.
    for (const which of ['first', 'later']) {
      if (which === 'later') {
        await httpPost(`${gw.url}/v1/services/cold/stop`);
        await waitCold(gw.url);
      }
      const tStart = nowMs();
      const results = await burst(`${gw.url}/services/cold/work`, opts.coldN, 70_000);
      const tDone = nowMs();
      // When the gateway began this start (its latest `service_start` event, ms resolution), and
      // its own clock of the start's phases (`service_ready`: launchAfterMs, launchTookMs).
      let startEventTs = null;
      let phases = null;
      try {
        const ev = JSON.parse((await httpGet(`${gw.url}/v1/events?service=cold&limit=100`)).body.toString('utf8'));
        const latest = (type) => (ev.events ?? []).filter((e) => e.type === type).sort((a, b) => b.id - a.id)[0];
        startEventTs = latest('service_start')?.ts ?? null;
        phases = latest('service_ready')?.details ?? null;
      } catch {
        /* no events: the share is not reported */
      }
      launches = readPids(pidFile);
      for (const pid of launches) adoptPid(pid); // killed at cleanup if the gateway leaves it behind
      const pid = launches.at(-1);
      if (pid !== undefined) {
        try {
          await httpGet(`http://${HOST}:${port}/__flush`, { timeoutMs: 2000 });
        } catch {
          /* child gone: arrivals unknown */
        }
      }
      // This start's child only (the first start's child wrote to the same file).
      const childEvents = readEvents(eventsFile).filter((e) => e.pid === pid);
      starts.push({
        start: which,
        ...analyse({
          results,
          childEvents,
          launches: launches.slice(starts.length),
          tStart,
          tDone,
          opts,
          startEventTs,
          phases,
        }),
      });
    }
    return starts;
  } finally {
    await gw.stop();
    await sleep(100);
    const leftRunning = launches.filter(isAlive);
    if (leftRunning.length)
      ctx.log(`  note: the gateway left cold child(ren) ${leftRunning.join(',')} running after stop`);
    ctx.coldLeftRunning = (ctx.coldLeftRunning ?? 0) + leftRunning.length;
  }
}

/** POST with an empty body (the stop API); the answer is not needed. */
function httpPost(url) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST' }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Until the service is cold again (its child stopped), polling its status. */
async function waitCold(base) {
  const deadline = nowMs() + 15_000;
  while (nowMs() < deadline) {
    const r = await httpGet(`${base}/v1/services/cold/status`);
    if (JSON.parse(r.body.toString('utf8')).state === 'cold') return;
    await sleep(20);
  }
  throw new Error('the cold service did not stop within 15 s');
}

function readPids(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
}
function readEvents(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

function analyse({ results, childEvents, launches, tStart, tDone, opts, startEventTs, phases }) {
  const ev = (type) => childEvents.find((e) => e.type === type);
  const ready = ev('ready')?.t ?? null;
  const health2xx = ev('health_2xx')?.t ?? null;
  const firstReq = ev('first_request')?.t ?? null;
  const boot = ev('boot')?.t ?? null;
  // The child process's own start (performance.timeOrigin: before Node's bootstrap).
  const spawned = ev('boot')?.spawned ?? null;
  const arrivals = ev('arrivals');
  const statuses = {};
  for (const r of results) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  const ok = results.filter((r) => r.status === 200);
  const extra = ready !== null ? ok.map((r) => r.t1 - ready) : [];
  const total = results.map((r) => r.t1 - r.t0);
  const connections = arrivals?.connections ?? [];
  const probeCount = arrivals?.probes?.times?.length ?? 0;
  const firstUpstreamConn =
    health2xx !== null ? connections.filter((t) => t > health2xx).sort((a, b) => a - b)[0] : undefined;
  const errors = {};
  for (const r of results) if (r.error) errors[r.error] = (errors[r.error] ?? 0) + 1;
  return {
    n: opts.coldN,
    launches: launches.length,
    statuses,
    ok200: ok.length,
    errors,
    forwardedAtUpstream: arrivals?.arrivals?.length ?? null,
    probesBeforeReady: arrivals?.probes?.before ?? null,
    // Connections the gateway opened to the child for the burst (probe connections excluded).
    upstreamConnections: arrivals ? connections.length - probeCount : null,
    health2xxToFirstUpstreamConnMs: firstUpstreamConn !== undefined ? firstUpstreamConn - health2xx : null,
    // Clients whose connection to the gateway took ≥ 900 ms: SYN retried after a full backlog.
    clientConnectsDelayed: results.filter((r) => r.connectMs !== null && r.connectMs >= 900).length,
    launcher: 'process',
    launchAfterFirstRequestMs: boot !== null ? boot - tStart : null,
    launchAfterMs: phases?.launchAfterMs ?? null,
    launchTookMs: phases?.launchTookMs ?? null,
    // The gateway's share of the cold start: its start began (`service_start`) → the child
    // process started (the launch), and the child's first 2xx to a probe → the first forwarded
    // request (noticing readiness).
    startToSpawnMs: spawned !== null && startEventTs !== null ? spawned - startEventTs : null,
    // The gateway's own clock: start begun → the launcher's spawn returned (the child exists).
    startToLaunchedMs:
      phases?.launchAfterMs != null && phases?.launchTookMs != null ? phases.launchAfterMs + phases.launchTookMs : null,
    gatewayShareMs:
      phases?.launchAfterMs != null && phases?.launchTookMs != null && health2xx !== null && firstReq !== null
        ? phases.launchAfterMs + phases.launchTookMs + (firstReq - health2xx)
        : null,
    readyToFirstForwardMs: ready !== null && firstReq !== null ? firstReq - ready : null,
    health2xxToFirstForwardMs: health2xx !== null && firstReq !== null ? firstReq - health2xx : null,
    readyToHealth2xxMs: ready !== null && health2xx !== null ? health2xx - ready : null,
    extraAfterReadyP50Ms: median(extra),
    extraAfterReadyP99Ms: percentile(extra, 99),
    lastAnswerAfterReadyMs: extra.length ? Math.max(...extra) : null,
    totalLatencyP50Ms: median(total),
    totalLatencyP99Ms: percentile(total, 99),
    burstWallMs: tDone - tStart,
    coldStartHeaderSeen: ok.filter((r) => r.coldHeader !== undefined).length,
  };
}

/**
 * What "child process started" includes that is not the gateway's: fork/exec and Node's own
 * start-up up to its clock's origin (performance.timeOrigin), measured by spawning the same
 * child, pinned the same way, from this small orchestrator. Median of `n`, in ms.
 */
async function nodeStartupMs(ctx, n = 5) {
  const times = [];
  for (let i = 0; i < n; i++) {
    const eventsFile = join(ctx.tmpDir, `startup-${i}.events`);
    const port = await freePort();
    const args = [CHILD, '--port', String(port), '--pid-file', join(ctx.tmpDir, `startup-${i}.pids`)];
    args.push('--events-file', eventsFile, '--boot-ms', '0');
    const t0 = nowMs();
    // Tracked (stopped by PID on failure and Ctrl-C too) and pinned like the gateway's child.
    const child = spawnTracked(`startup-${i}`, process.execPath, args, { core: ctx.loadCore });
    try {
      await waitHttp(`http://${HOST}:${port}/health`, {
        timeoutMs: 10_000,
        intervalMs: 10,
        isDead: () => child.exitInfo !== null,
      });
      const boot = readEvents(eventsFile).find((e) => e.type === 'boot');
      if (boot) times.push(boot.spawned - t0);
    } finally {
      await stopProc(child);
    }
  }
  return median(times);
}

export async function runColdStart(ctx) {
  const startupMs = await nodeStartupMs(ctx);
  ctx.log(`  node start-up (spawn from a small parent → the child's clock origin): ${startupMs?.toFixed(1)} ms`);
  const reps = [];
  // With --base-root, each repetition runs both gateways, the order alternating.
  const gateways = ctx.opts.baseRoot ? ['hestia', 'base'] : ['hestia'];
  for (let rep = 0; rep < ctx.opts.coldRepeats; rep++) {
    for (const gateway of rep % 2 === 0 ? gateways : [...gateways].reverse())
      reps.push(...(await runOne(ctx, rep, gateway)));
  }
  return { reps, nodeStartupMs: startupMs };
}

async function runOne(ctx, rep, gateway) {
  const starts = await runColdStartOnce(ctx, rep, gateway === 'base' ? ctx.opts.baseRoot : undefined);
  for (const r of starts) {
    ctx.log(
      `  cold start ${rep + 1}/${ctx.opts.coldRepeats} ${gateway} (${r.start}): launches ${r.launches}, 200s ${r.ok200}/${r.n}, ` +
        `start→launch call ${r.launchAfterMs} ms, launch call ${r.launchTookMs} ms, ` +
        `health 2xx→first forward ${r.health2xxToFirstForwardMs?.toFixed(1)} ms, share ${r.gatewayShareMs?.toFixed(1)} ms, ` +
        `extra after ready p50 ${r.extraAfterReadyP50Ms?.toFixed(1)} / p99 ${r.extraAfterReadyP99Ms?.toFixed(1)} ms, ` +
        `upstream connections ${r.upstreamConnections}, slow client connects ${r.clientConnectsDelayed}` +
        (Object.keys(r.errors).length ? `, errors ${JSON.stringify(r.errors)}` : ''),
    );
  }
  return starts.map((r) => ({ gateway, ...r }));
}
