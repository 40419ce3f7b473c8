/**
 * The `process` launcher (SPEC §5): run a local program as the service.
 *
 * - `command` as an argv array is spawned without a shell; as a string it runs under
 *   `/bin/sh -c`. `{host}`, `{port}`, `{machine}`, `{service}` are expanded in the command,
 *   `cwd` and `env` values. `env` is merged over the gateway's own environment.
 * - The child gets its own process group (`detached: true`): a stop signals the whole group
 *   with `stop_signal`, then SIGKILLs the group after `stop_timeout_ms`.
 * - stdout/stderr go to the service's output ring (`ctx.output`, SPEC §12: bounded, readable
 *   through the API, each line also logged with `event_type: 'service_output'` and the service
 *   id); the first and last stderr lines are kept for the failure reason ("exited with code 1:
 *   <first error line> … <last lines>", stack frames dropped; see remote/output-excerpt.ts).
 * - `handle.exited` settles when the child exits, whatever the cause.
 * - `handle.persist` records pid, start time, boot id and argv so that a restarted gateway can
 *   adopt the child only if it is provably the same process (see `adopt`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ProcessLauncherConfig } from '../../config/schema.ts';
import { OutputRing, type OutputSink } from '../../observability/output-ring.ts';
import { HeadTailLines } from '../../remote/output-excerpt.ts';
import {
  type ExitInfo,
  expandTemplate,
  type LaunchContext,
  LaunchError,
  type Launcher,
  type LauncherDeps,
  type LauncherFactory,
  type LaunchHandle,
} from '../types.ts';
import { trackGroup, untrackGroup } from './children.ts';
import { groupAlive, signalGroup, stopGroup, waitGroupStopped } from './group.ts';
import { bootId, readCmdline, readStat } from './proc.ts';

/** How often an adopted (not our child, so no exit event) process is checked for liveness. */
const ADOPTED_POLL_MS = 1_000;

interface Tracked {
  pid: number;
  exited: Promise<ExitInfo>;
  /** SIGSTOPped by `pause` (stop_mode: pause) and not yet continued. */
  paused?: boolean;
}

export interface ProcessPersist {
  pid: number;
  startTime: string;
  bootId: string | null;
  argv: string[];
}

export function processArgv(cfg: ProcessLauncherConfig, expand: (s: string) => string): string[] {
  return typeof cfg.command === 'string' ? ['/bin/sh', '-c', expand(cfg.command)] : cfg.command.map(expand);
}

function describeExit(code: number | null, signal: string | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code ?? 'unknown'}`;
}

export class ProcessLauncher implements Launcher {
  readonly type = 'process';
  /** Local children die with the gateway: it stops them at shutdown (SPEC §1). */
  readonly stopOnShutdown = true;
  private readonly tracked = new WeakMap<LaunchHandle, Tracked>();

  private readonly signal: NodeJS.Signals;

  constructor(
    private readonly cfg: ProcessLauncherConfig,
    private readonly deps: LauncherDeps,
  ) {
    const name = cfg.stop_signal.toUpperCase();
    const full = name.startsWith('SIG') ? name : `SIG${name}`;
    if (full in osConstants.signals) {
      this.signal = full as NodeJS.Signals;
    } else {
      this.signal = 'SIGTERM';
      deps.log.warn(
        { event_type: 'config_warning', stop_signal: cfg.stop_signal },
        `unknown stop_signal '${cfg.stop_signal}' for service '${deps.serviceId}'; using SIGTERM`,
      );
    }
  }

  async start(ctx: LaunchContext): Promise<LaunchHandle> {
    ctx.signal.throwIfAborted();
    const expand = (s: string) => expandTemplate(s, ctx.vars);
    const argv = processArgv(this.cfg, expand);
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const [k, v] of Object.entries(this.cfg.env)) env[k] = expand(v);
    const cwd = this.cfg.cwd ? expand(this.cfg.cwd) : undefined;
    const [file, ...args] = argv as [string, ...string[]];
    // spawn reports a missing cwd as ENOENT of the program: say what is really missing.
    if (cwd !== undefined && !existsSync(cwd)) {
      throw new LaunchError(`working directory ${JSON.stringify(cwd)} does not exist`, { cwd });
    }

    const child = spawn(file, args, { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) =>
        reject(new LaunchError(`cannot run ${JSON.stringify(file)}: ${err.message}`, { argv, cwd: cwd ?? null })),
      );
    });
    const pid = child.pid;
    if (pid === undefined) throw new LaunchError(`cannot run ${JSON.stringify(file)}: no pid`);
    trackGroup(pid);

    // The failure reason's lines: stderr split into lines by a ring (bounded line length) that
    // keeps the first and the last ones (HeadTailLines), not an arbitrary byte window.
    const stderrLines = new HeadTailLines();
    const stderrSplit = new OutputRing({ maxLines: 1, maxLineBytes: 1024, onLine: (l) => stderrLines.push(l.text) });
    this.pipeOutput(child, ctx.output ?? this.loggedOutput(), stderrSplit);
    const exited = this.watchExit(child, stderrLines);
    ctx.log.info(
      { event_type: 'service_process_spawned', pid, argv, cwd: cwd ?? null },
      `service '${ctx.serviceId}' process started (pid ${pid})`,
    );

    const stat = readStat(pid);
    const persist: ProcessPersist = { pid, startTime: stat?.startTime ?? '', bootId: bootId(), argv };
    const handle: LaunchHandle = { exited, persist: { ...persist }, info: { pid } };
    this.tracked.set(handle, { pid, exited });
    return handle;
  }

  async stop(handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
    const t = this.tracked.get(handle);
    // A handle without a process (an upstream adopted by a health probe) has nothing to stop.
    if (!t) return;
    // A stopped (paused) group only acts on its stop signal once continued: continue it right
    // after the signal, so the signal is the first thing it sees.
    await stopGroup(t.pid, this.stopSignal(), this.cfg.stop_timeout_ms, t.exited, t.paused === true);
    t.paused = false;
    untrackGroup(t.pid);
    ctx.log.debug({ event_type: 'service_process_stopped', pid: t.pid }, 'process group stopped');
  }

  /**
   * Adopt a child recorded by an earlier gateway: only when the pid is alive, not a zombie,
   * on the same boot, with the same start time and the same argv. Anything else is a different
   * process (pid reuse) and is left alone; null means "not ours".
   */
  async adopt(persisted: Record<string, unknown>, ctx: LaunchContext): Promise<LaunchHandle | null> {
    const p = persisted as Partial<ProcessPersist>;
    if (typeof p.pid !== 'number' || typeof p.startTime !== 'string' || !Array.isArray(p.argv)) return null;
    const pid = p.pid;
    const stat = readStat(pid);
    if (!stat || stat.state === 'Z') return null;
    if (stat.startTime !== p.startTime) return null;
    if (p.bootId && bootId() !== p.bootId) return null;
    const cmd = readCmdline(pid);
    if (!cmd || cmd.join('\0') !== p.argv.join('\0')) return null;

    trackGroup(stat.pgrp);
    const exited = this.pollExit(pid, p.startTime);
    const handle: LaunchHandle = { exited, persist: { ...p }, info: { pid, adopted: true } };
    this.tracked.set(handle, { pid: stat.pgrp, exited });
    ctx.log.info(
      { event_type: 'service_process_adopted', pid },
      `service '${ctx.serviceId}' re-adopted its process (pid ${pid})`,
    );
    return handle;
  }

  /** stop_mode: pause — SIGSTOP to the whole group (the server and its workers freeze in place). */
  async pause(handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
    const t = this.tracked.get(handle);
    if (!t) throw new LaunchError('nothing to pause: this service has no process of its own');
    if (!signalGroup(t.pid, 'SIGSTOP')) throw new LaunchError(`process group ${t.pid} is gone`);
    t.paused = true;
    // Paused means frozen: wait until the kernel says so (bounded; a short poll during a pause only).
    await waitGroupStopped(t.pid);
    ctx.log.debug({ event_type: 'service_process_paused', pid: t.pid }, 'process group paused (SIGSTOP)');
  }

  /** SIGCONT to the group paused by `pause`. */
  async resume(handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
    const t = this.tracked.get(handle);
    if (!t) throw new LaunchError('nothing to resume: this service has no process of its own');
    if (!groupAlive(t.pid) || !signalGroup(t.pid, 'SIGCONT')) throw new LaunchError(`process group ${t.pid} is gone`);
    t.paused = false;
    ctx.log.debug({ event_type: 'service_process_resumed', pid: t.pid }, 'process group resumed (SIGCONT)');
  }

  /** stop_signal as a signal name; an unknown one falls back to SIGTERM (said once, at creation). */
  private stopSignal(): NodeJS.Signals {
    return this.signal;
  }

  /** Without a ring from the lifecycle (a launcher used on its own): lines only to the log. */
  private loggedOutput(): OutputSink {
    const log = this.deps.log;
    return new OutputRing({
      maxLines: 1,
      onLine: (l) => log.info({ event_type: 'service_output', stream: l.stream }, l.text),
    });
  }

  private pipeOutput(child: ChildProcess, out: OutputSink, stderrTail: OutputRing): void {
    for (const stream of ['stdout', 'stderr'] as const) {
      const src = child[stream];
      if (!src) continue;
      // A pipe error (the child closed its end oddly) must not become an uncaught exception.
      src.on('error', () => {});
      src.on('data', (chunk: Buffer) => {
        out.write(stream, chunk);
        if (stream === 'stderr') stderrTail.write(stream, chunk);
      });
      src.on('end', () => {
        out.end(stream);
        if (stream === 'stderr') stderrTail.end(stream);
      });
    }
  }

  private watchExit(child: ChildProcess, stderrLines: HeadTailLines): Promise<ExitInfo> {
    return new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        // The last stderr lines may still be in the pipe: wait for the streams to close, but
        // not for long (a grandchild may hold them open).
        const finish = () => {
          const tail = stderrLines.summary();
          const base = describeExit(code, signal);
          resolve({ code, signal, reason: tail ? `${base}: ${tail}` : base });
        };
        let done = false;
        const once = () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          finish();
        };
        const timer = setTimeout(once, 200);
        child.once('close', once);
      });
    });
  }

  private async pollExit(pid: number, startTime: string): Promise<ExitInfo> {
    for (;;) {
      await sleep(ADOPTED_POLL_MS, undefined, { ref: false });
      const st = readStat(pid);
      if (!st || st.state === 'Z' || st.startTime !== startTime) {
        return { code: null, signal: null, reason: `adopted process ${pid} ended` };
      }
    }
  }
}

export const processLauncherFactory: LauncherFactory<ProcessLauncherConfig> = (cfg, deps) =>
  new ProcessLauncher(cfg, deps);
