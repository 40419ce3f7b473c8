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
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startHestia } from '../lib/hestia.mjs';
import { freePort, HOST, httpGet, nowMs, sleep, waitHttp } from '../lib/net.mjs';
import { adoptPid, isAlive, pinnedArgv, spawnTracked, stopProc } from '../lib/procs.mjs';
import { median, percentile } from '../lib/stats.mjs';

const CHILD = fileURLToPath(new URL('../upstreams/cold-child.mjs', import.meta.url));
// The real back ends of scripts/ci/setup-backends.sh, for the ssh and docker legs.
const CI_DIR = process.env.HESTIA_CI_DIR ?? '/tmp/hestia-ci';
const SSH_DIR = join(CI_DIR, 'ssh');
const SSH_PORT = 2222;
const PODMAN_SOCK = join(CI_DIR, 'podman.sock');
const BUSYBOX_IMAGE = 'localhost/hestia-busybox:latest';

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

/**
 * The `cold` service's launcher for one leg: how the same child is started.
 * - `process`: the gateway spawns it (pinned to the load core with taskset, which execs).
 * - `ssh`: the gateway runs it over ssh on machine `box` = this host's sshd (scripts/ci), detached.
 * - `docker`: the gateway starts an existing Podman container (created here over the Docker
 *   API) that runs the host's node binary and the child from bind mounts, on the host network.
 * Returns the launcher block, machines to add, and `cleanup()` for what was created here.
 */
async function launcherLeg(kind, ctx, argv) {
  if (kind === 'process') {
    const [cmd, args] = pinnedArgv(ctx.loadCore, process.execPath, argv);
    return { launcher: { type: 'process', command: [cmd, ...args], stop_timeout_ms: 3000 }, cleanup: async () => {} };
  }
  if (kind === 'ssh') {
    const [cmd, args] = pinnedArgv(ctx.loadCore, process.execPath, argv);
    const line = [cmd, ...args].map(shellQuote).join(' ');
    const pidFile = argv[argv.indexOf('--pid-file') + 1];
    return {
      launcher: {
        type: 'ssh',
        machine: 'box',
        command: `setsid nohup ${line} </dev/null >/dev/null 2>&1 &`,
        stop_command: `kill $(tail -n 1 ${shellQuote(pidFile)})`,
      },
      machines: {
        box: {
          host: HOST,
          ssh: {
            port: SSH_PORT,
            identity_file: join(SSH_DIR, 'client_key'),
            known_hosts: join(SSH_DIR, 'known_hosts'),
          },
        },
      },
      cleanup: async () => {},
    };
  }
  if (kind === 'docker') {
    const name = `hestia-bench-cold-${process.pid}-${legSeq++}`;
    const node = realpathSync(process.execPath);
    const binds = [
      `${node}:/usr/local/bin/node:ro`,
      '/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:ro',
      '/usr/lib64:/lib64:ro',
      `${dirname(CHILD)}:${dirname(CHILD)}:ro`,
      `${ctx.tmpDir}:${ctx.tmpDir}`,
    ];
    const created = await dockerApi('POST', `/containers/create?name=${name}`, {
      Image: BUSYBOX_IMAGE,
      Cmd: ['/usr/local/bin/node', ...argv],
      HostConfig: {
        NetworkMode: 'host',
        Init: true,
        Binds: binds,
        ...(ctx.loadCore !== undefined && ctx.loadCore !== null ? { CpusetCpus: String(ctx.loadCore) } : {}),
      },
    });
    if (created.status !== 201)
      throw new Error(`podman: cannot create ${name}: HTTP ${created.status} ${created.body}`);
    return {
      launcher: { type: 'docker', container: name, socket: PODMAN_SOCK, stop_timeout_s: 3 },
      cleanup: async () => {
        await dockerApi('DELETE', `/containers/${name}?force=true`).catch(() => {});
      },
      // PIDs in the file are the container's own namespace: never signalled from here.
      foreignPids: true,
    };
  }
  throw new Error(`unknown cold-start launcher leg '${kind}'`);
}
let legSeq = 0;

const shellQuote = (s) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${String(s).replaceAll("'", "'\\''")}'`);

/** One Docker Engine API call over the Podman socket; the answer's status and body text. */
function dockerApi(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null : Buffer.from(JSON.stringify(body));
    const req = http.request(
      {
        socketPath: PODMAN_SOCK,
        method,
        path,
        headers: data ? { 'content-type': 'application/json', 'content-length': data.length } : {},
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error('podman API timeout')));
    req.on('error', reject);
    req.end(data ?? undefined);
  });
}

/**
 * Which launcher legs can run here: `process` always; `ssh` and `docker` when the back ends of
 * scripts/ci/setup-backends.sh are up (sshd's key and pid, Podman's API answering `_ping`).
 * Returns the legs and, for each one left out, why.
 */
export async function availableColdLaunchers(wanted) {
  const legs = [];
  const skipped = [];
  for (const kind of wanted) {
    if (kind === 'ssh' && !(existsSync(join(SSH_DIR, 'client_key')) && pidAlive(join(SSH_DIR, 'sshd.pid')))) {
      skipped.push(`ssh: no sshd from scripts/ci/setup-sshd.sh (${SSH_DIR})`);
      continue;
    }
    if (kind === 'docker') {
      const ping = existsSync(PODMAN_SOCK) ? await dockerApi('GET', '/_ping').catch(() => null) : null;
      if (ping?.body !== 'OK') {
        skipped.push(`docker: no Podman API from scripts/ci/setup-podman.sh (${PODMAN_SOCK})`);
        continue;
      }
    }
    legs.push(kind);
  }
  return { legs, skipped };
}

function pidAlive(file) {
  try {
    return isAlive(Number(readFileSync(file, 'utf8').trim()));
  } catch {
    return false;
  }
}

/** `root`: another checkout (the --base-root leg); default the gateway under test. */
export async function runColdStartOnce(ctx, rep, root, kind = 'process') {
  const { opts, tmpDir } = ctx;
  const tag = `${kind}-${root ? `base-${rep}` : String(rep)}`;
  const port = await freePort();
  const pidFile = join(tmpDir, `cold-${tag}.pids`);
  const eventsFile = join(tmpDir, `cold-${tag}.events`);
  // The child runs on the load/upstream core, like every upstream here (taskset execs, so the
  // PID the launcher sees is the child's own).
  const argv = [CHILD, '--port', String(port), '--pid-file', pidFile, '--events-file', eventsFile];
  argv.push('--boot-ms', String(opts.coldBootMs));
  const leg = await launcherLeg(kind, ctx, argv);
  const config = {
    ...(leg.machines ? { machines: leg.machines } : {}),
    services: {
      cold: {
        base_url: `http://${HOST}:${port}`,
        health_url: `http://${HOST}:${port}/health`,
        health_interval_ms: opts.coldHealthIntervalMs,
        // Room for the whole burst: the scenario measures the start, not the queue limit.
        queue_size: opts.coldN * 2,
        request_timeout_seconds: 60,
        start_timeout_ms: 30_000,
        launcher: leg.launcher,
      },
    },
  };
  let gw;
  try {
    gw = await startHestia({
      name: `cold-${tag}`,
      config,
      tmpDir,
      core: ctx.gatewayCore,
      ...(root ? { root, base: true } : {}),
    });
  } catch (err) {
    await leg.cleanup();
    throw err;
  }
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
      // Killed at cleanup if the gateway leaves it behind (not a container's: its own PIDs).
      if (!leg.foreignPids) for (const pid of launches) adoptPid(pid);
      if (launches.length > starts.length) {
        try {
          await httpGet(`http://${HOST}:${port}/__flush`, { timeoutMs: 2000 });
        } catch {
          /* child gone: arrivals unknown */
        }
      }
      // This start's child only: the events since the last `boot` (the first start's child
      // wrote to the same file; PIDs do not tell them apart in a container).
      const all = readEvents(eventsFile);
      const lastBoot = all.findLastIndex((e) => e.type === 'boot');
      const childEvents = lastBoot < 0 ? [] : all.slice(lastBoot);
      starts.push({
        start: which,
        launcher: kind,
        ...analyse({
          kind,
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
    // A remote launcher's service outlives the gateway by design (re-adopted at its next boot):
    // stopped through the API first. A local child must die with the gateway: not helped here.
    if (kind !== 'process') {
      await httpPost(`${gw.url}/v1/services/cold/stop`).catch(() => {});
      await waitCold(gw.url).catch(() => {});
    }
    await gw.stop();
    await leg.cleanup();
    await sleep(100);
    const leftRunning = leg.foreignPids ? [] : launches.filter(isAlive);
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

function analyse({ kind, results, childEvents, launches, tStart, tDone, opts, startEventTs, phases }) {
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
    // The gateway's share: start begun → launcher called, plus the launch call itself for
    // `process` (the gateway's own fork/exec; for ssh and docker that call is the back end's
    // work: the ssh session, Podman's container start), plus noticing readiness.
    gatewayShareMs:
      phases?.launchAfterMs != null && phases?.launchTookMs != null && health2xx !== null && firstReq !== null
        ? phases.launchAfterMs + (kind === 'process' ? phases.launchTookMs : 0) + (firstReq - health2xx)
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
  const { legs, skipped } = await availableColdLaunchers(ctx.opts.coldLaunchers);
  for (const why of skipped) ctx.log(`  launcher leg left out: ${why}`);
  const reps = [];
  // With --base-root, each repetition runs both gateways, the order alternating.
  const gateways = ctx.opts.baseRoot ? ['hestia', 'base'] : ['hestia'];
  for (const kind of legs)
    for (let rep = 0; rep < ctx.opts.coldRepeats; rep++) {
      for (const gateway of rep % 2 === 0 ? gateways : [...gateways].reverse())
        reps.push(...(await runOne(ctx, rep, gateway, kind)));
    }
  return { reps, nodeStartupMs: startupMs, skippedLaunchers: skipped };
}

async function runOne(ctx, rep, gateway, kind) {
  const starts = await runColdStartOnce(ctx, rep, gateway === 'base' ? ctx.opts.baseRoot : undefined, kind);
  for (const r of starts) {
    ctx.log(
      `  cold start ${kind} ${rep + 1}/${ctx.opts.coldRepeats} ${gateway} (${r.start}): launches ${r.launches}, 200s ${r.ok200}/${r.n}, ` +
        `start→launch call ${r.launchAfterMs} ms, launch call ${r.launchTookMs} ms, ` +
        `health 2xx→first forward ${r.health2xxToFirstForwardMs?.toFixed(1)} ms, share ${r.gatewayShareMs?.toFixed(1)} ms, ` +
        `extra after ready p50 ${r.extraAfterReadyP50Ms?.toFixed(1)} / p99 ${r.extraAfterReadyP99Ms?.toFixed(1)} ms, ` +
        `upstream connections ${r.upstreamConnections}, slow client connects ${r.clientConnectsDelayed}` +
        (Object.keys(r.errors).length ? `, errors ${JSON.stringify(r.errors)}` : ''),
    );
  }
  return starts.map((r) => ({ gateway, ...r }));
}
