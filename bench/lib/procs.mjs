/**
 * Child processes of the benchmark: spawn them pinned to a core, remember every PID, and stop
 * every one of them by PID when the run ends — normally, on failure, or on Ctrl-C.
 *
 * Nothing here ever kills by name: only PIDs this run started (or PIDs a child reported to us,
 * such as the cold-start child that the gateway launched) are signalled.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';

/** pid -> { name, child, exited } for every process we spawned and have not yet seen exit. */
const tracked = new Map();
/** PIDs we did not spawn ourselves but are responsible for (e.g. launched by the gateway). */
const adopted = new Set();

let pinning = true;
/** Turn core pinning off (e.g. --no-pin, or no taskset on this machine). */
export function setPinning(on) {
  pinning = on;
}
export function pinningEnabled() {
  return pinning;
}

/** argv that runs `cmd args` on `core` (taskset execs the command, so the PID stays the same). */
export function pinnedArgv(core, cmd, args) {
  if (!pinning || core === undefined || core === null) return [cmd, args];
  return ['taskset', ['-c', String(core), cmd, ...args]];
}

/** Pin this (the orchestrator) process, all its threads, to a core: it runs the SSE, cold-start
 *  and 1 GiB clients and samples /proc, and must not land on the gateway's core. */
export function pinSelf(core) {
  if (!pinning) return;
  spawnSync('taskset', ['-a', '-p', '-c', String(core), String(process.pid)], { stdio: 'ignore' });
}

/**
 * Spawn a tracked process. stdout/stderr go to `logFile` (kept in the run's temp dir for
 * post-mortems). With `stdinPipe`, the child gets a pipe on stdin that closes when we die:
 * our own Node helpers exit on that, so even a SIGKILLed orchestrator leaves none behind.
 */
export function spawnTracked(
  name,
  cmd,
  args,
  { core, env, cwd, logFile, stdinPipe = false, captureStdout = false } = {},
) {
  const [c, a] = pinnedArgv(core, cmd, args);
  const child = spawn(c, a, {
    cwd,
    env: env ?? process.env,
    stdio: [stdinPipe ? 'pipe' : 'ignore', logFile || captureStdout ? 'pipe' : 'ignore', logFile ? 'pipe' : 'ignore'],
  });
  if (logFile && !captureStdout) {
    const out = createWriteStream(logFile, { flags: 'a' });
    child.stdout.pipe(out);
    child.stderr.pipe(out);
  } else if (logFile) {
    child.stderr.pipe(createWriteStream(logFile, { flags: 'a' }));
  }
  const exited = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      tracked.delete(child.pid);
      resolve({ code, signal });
    });
    child.once('error', (err) => {
      tracked.delete(child.pid);
      resolve({ code: null, signal: null, error: err });
    });
  });
  if (child.pid === undefined) throw new Error(`could not start ${name}: ${c} ${a.join(' ')}`);
  const proc = { name, pid: child.pid, child, exited, exitInfo: null };
  // `exited` never rejects (errors resolve it too), so nothing is lost by not awaiting here.
  void exited.then((info) => {
    proc.exitInfo = info;
  });
  tracked.set(child.pid, proc);
  return proc;
}

/** Remember a PID we must kill at cleanup although we did not spawn it. */
export function adoptPid(pid) {
  if (Number.isInteger(pid) && pid > 1) adopted.add(pid);
}

export function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return !isZombie(pid);
  } catch {
    return false;
  }
}

function isZombie(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

/** Stop one tracked process: `signal`, then SIGKILL after `timeoutMs`. Resolves with its exit. */
export async function stopProc(proc, { signal = 'SIGTERM', timeoutMs = 5000 } = {}) {
  if (!proc || proc.exitInfo) return proc?.exitInfo;
  try {
    process.kill(proc.pid, signal);
  } catch {
    /* already gone */
  }
  let timer;
  const killed = new Promise((resolve) => {
    timer = setTimeout(() => {
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      resolve();
    }, timeoutMs);
  });
  await Promise.race([proc.exited, killed]);
  clearTimeout(timer);
  return proc.exited;
}

/** Stop everything still running (normal end and Ctrl-C): SIGTERM, bounded wait, SIGKILL. */
export async function stopAll() {
  const procs = [...tracked.values()].reverse(); // gateway before the upstreams it talks to
  await Promise.all(procs.map((p) => stopProc(p, { timeoutMs: 4000 })));
  for (const pid of adopted) {
    if (isAlive(pid)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  adopted.clear();
}

/** Last resort inside process 'exit' (synchronous): SIGKILL whatever is left. */
export function killAllSync() {
  for (const pid of [...tracked.keys(), ...adopted]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

let handlersInstalled = false;
let interrupted = false;
/** True once Ctrl-C / SIGTERM arrived: failures after that are the interruption, not bugs. */
export function wasInterrupted() {
  return interrupted;
}
/** Install Ctrl-C / SIGTERM / crash handlers that clean up before exiting. */
export function installCleanupHandlers(log = console.error) {
  if (handlersInstalled) return;
  handlersInstalled = true;
  let stopping = false;
  const bail = (why, code) => {
    if (stopping) return;
    stopping = true;
    interrupted = true;
    log(`\n${why}: stopping every process this run started...`);
    const hard = setTimeout(() => {
      killAllSync();
      process.exit(code);
    }, 8000);
    void stopAll().finally(() => {
      clearTimeout(hard);
      process.exit(code);
    });
  };
  process.on('SIGINT', () => bail('interrupted', 130));
  process.on('SIGTERM', () => bail('terminated', 143));
  process.on('uncaughtException', (err) => {
    log(err?.stack ?? String(err));
    bail('crashed', 1);
  });
  process.on('unhandledRejection', (err) => {
    log(err?.stack ?? String(err));
    bail('crashed', 1);
  });
  process.on('exit', killAllSync);
}

// ---------------------------------------------------------------------------------------------
// /proc readers
// ---------------------------------------------------------------------------------------------

export const CLK_TCK = (() => {
  const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number.parseInt(r.stdout, 10);
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** utime+stime of a process (all its threads, live and exited) in microseconds, or null. */
export function cpuMicros(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state); utime is field 14, stime field 15.
    const ticks = Number(f[11]) + Number(f[12]);
    return (ticks * 1e6) / CLK_TCK;
  } catch {
    return null;
  }
}

/** { rssKiB, hwmKiB } from /proc/<pid>/status, or null. */
export function memKiB(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+)/.exec(s);
    const hwm = /VmHWM:\s+(\d+)/.exec(s);
    return { rssKiB: rss ? Number(rss[1]) : null, hwmKiB: hwm ? Number(hwm[1]) : null };
  } catch {
    return null;
  }
}

/** Direct children of a process (nginx master -> its worker). */
export function childPids(pid) {
  const f = `/proc/${pid}/task/${pid}/children`;
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
}

/**
 * Sample VmRSS of some PIDs every `intervalMs` until stopped; returns max/last per PID. Sampling
 * from this process costs a file read per PID per tick, negligible next to the load.
 */
export function startRssSampler(pids, intervalMs = 100) {
  const stats = new Map(pids.map((p) => [p, { maxKiB: 0, firstKiB: null, lastKiB: null, samples: 0 }]));
  const tick = () => {
    for (const [pid, st] of stats) {
      const m = memKiB(pid);
      if (!m || m.rssKiB === null) continue;
      if (st.firstKiB === null) st.firstKiB = m.rssKiB;
      st.lastKiB = m.rssKiB;
      st.maxKiB = Math.max(st.maxKiB, m.rssKiB);
      st.samples++;
    }
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return stats;
    },
  };
}
