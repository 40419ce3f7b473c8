/**
 * The `process` launcher, placed (SPEC §15): on a machine with an `agent` block the process is
 * started by that machine's `hestia agent` — it is the agent's child, not the gateway's — and
 * otherwise by the local ProcessLauncher, unchanged. Same fields either way (`command`, `cwd`,
 * `env`, `stop_signal`, `stop_timeout_ms`; `{host}` is the machine's host).
 *
 * Through an agent:
 * - `start` expands the command like the local launcher (`processArgv`) and asks the agent;
 *   the agent's env is the base, `env` is merged over it there.
 * - `handle.exited` settles from the agent's pushed event channel (remote/agent/channel.ts):
 *   an exit, or the process missing from the agent's list after a reconnect.
 * - `stop` asks the agent to stop the group (stop_signal, SIGKILL after stop_timeout_ms).
 * - `adopt` (gateway restart) asks the agent whether that process still runs.
 * - `pause`/`resume` (stop_mode: pause) work for a local child only; for an agent's process they
 *   reject, and the lifecycle stops it instead.
 * - What it starts outlives the gateway (it belongs to the agent): not stopped at gateway
 *   shutdown, re-adopted at the next boot. `stopOnShutdown` therefore follows the current
 *   handle: true for a local child, false for an agent's process.
 * - The agent's copy of the output stays readable at the agent (`GET /v1/processes/{id}/output`);
 *   the lines it pushes go to the service's output ring (`GET /v1/services/{id}/logs`) and the
 *   gateway's log as `service_output`, like a local child's.
 */

import type { MachineAgentConfig, ProcessLauncherConfig } from '../../config/schema.ts';
import type { OutputSink } from '../../observability/output-ring.ts';
import { channelFor } from '../../remote/agent/channel.ts';
import { AgentError } from '../../remote/agent/client.ts';
import type { ExitRecord } from '../../remote/agent/protocol.ts';
import { ProcessLauncher, processArgv } from '../process/index.ts';
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

export interface AgentPersist {
  /** The machine whose agent runs it, and that agent's process id. */
  agentMachine: string;
  agentProcess: string;
  pid: number;
}

/** How long a start waits for the agent's event channel before starting anyway. */
const CHANNEL_FIRST_MS = 3_000;

/** `p`, or nothing after `ms` or when `signal` aborts (never rejects). */
function raceTimeout(p: Promise<void>, ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    void p.then(done);
  });
}

/** Slack on top of stop_timeout_ms for the agent's own SIGKILL wait and the round trip. */
const STOP_SLACK_MS = 10_000;

function toExitInfo(e: ExitRecord): ExitInfo {
  return { code: e.code, signal: e.signal, reason: e.reason };
}

export class PlacedProcessLauncher implements Launcher {
  readonly type = 'process';
  private readonly local: ProcessLauncher;
  private readonly remote = new WeakMap<LaunchHandle, AgentPersist>();
  private current: LaunchHandle | null = null;

  constructor(
    private readonly cfg: ProcessLauncherConfig,
    private readonly deps: LauncherDeps,
  ) {
    this.local = new ProcessLauncher(cfg, deps);
  }

  /** A local child dies with the gateway; an agent's process does not (see the module comment). */
  get stopOnShutdown(): boolean {
    return this.current === null || !this.remote.has(this.current);
  }

  private agentOf(machineId: string): MachineAgentConfig | undefined {
    return this.deps.config.machines[machineId]?.agent;
  }

  private channel(machineId: string, agent: MachineAgentConfig) {
    return channelFor(agent, `agent of machine '${machineId}' (${new URL(agent.url).origin})`);
  }

  async start(ctx: LaunchContext): Promise<LaunchHandle> {
    const agent = this.agentOf(ctx.machine.id);
    if (!agent) {
      const h = await this.local.start(ctx);
      this.current = h;
      return h;
    }
    ctx.signal.throwIfAborted();
    const expand = (s: string) => expandTemplate(s, ctx.vars);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.cfg.env)) env[k] = expand(v);
    const ch = this.channel(ctx.machine.id, agent);
    // The event channel first (bounded: an agent that does not answer fails the start below), so
    // that the process's first output lines reach its watch.
    await raceTimeout(ch.connected(), CHANNEL_FIRST_MS, ctx.signal);
    let p: Awaited<ReturnType<typeof ch.client.start>>;
    try {
      p = await ch.client.start(
        {
          name: ctx.serviceId,
          argv: processArgv(this.cfg, expand),
          ...(this.cfg.cwd ? { cwd: expand(this.cfg.cwd) } : {}),
          env,
          stop_signal: this.cfg.stop_signal,
          stop_timeout_ms: this.cfg.stop_timeout_ms,
        },
        ctx.signal,
      );
    } catch (err) {
      if (err instanceof AgentError) throw new LaunchError(err.message, { machine: ctx.machine.id, agent: err.kind });
      throw err;
    }
    const handle = this.remoteHandle(
      ch,
      { agentMachine: ctx.machine.id, agentProcess: p.id, pid: p.pid },
      false,
      ctx.output,
    );
    ctx.log.info(
      { event_type: 'service_process_spawned', pid: p.pid, agent_process: p.id, machine: ctx.machine.id },
      `service '${ctx.serviceId}' process started by the agent of '${ctx.machine.id}' (pid ${p.pid})`,
    );
    return handle;
  }

  private remoteHandle(
    ch: ReturnType<PlacedProcessLauncher['channel']>,
    persist: AgentPersist,
    adopted: boolean,
    output: OutputSink | undefined,
  ): LaunchHandle {
    const log = this.deps.log;
    // Lines pushed by the agent go to the service's output ring (the logs API; the ring also logs
    // each line as service_output), or, for a launcher used without one, to the log alone.
    const exited = ch
      .watch(persist.agentProcess, (line) => {
        if (output !== undefined) output.write(line.stream, `${line.text}\n`);
        else
          log.info(
            { event_type: 'service_output', stream: line.stream, pid: persist.pid, machine: persist.agentMachine },
            line.text,
          );
      })
      .then(toExitInfo);
    const handle: LaunchHandle = {
      exited,
      persist: { ...persist },
      info: {
        pid: persist.pid,
        machine: persist.agentMachine,
        agentProcess: persist.agentProcess,
        ...(adopted ? { adopted } : {}),
      },
    };
    this.remote.set(handle, persist);
    this.current = handle;
    return handle;
  }

  /** stop_mode: pause — a local child only (an agent's process is stopped instead: the core falls back). */
  async pause(handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
    if (this.remote.has(handle)) throw new LaunchError('pausing a process run by an agent is not supported');
    await this.local.pause(handle, ctx);
  }

  async resume(handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
    if (this.remote.has(handle)) throw new LaunchError('resuming a process run by an agent is not supported');
    await this.local.resume(handle, ctx);
  }

  async stop(handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
    const r = this.remote.get(handle);
    if (!r) {
      await this.local.stop(handle, ctx);
      if (this.current === handle) this.current = null;
      return;
    }
    const agent = this.agentOf(r.agentMachine);
    if (!agent)
      throw new LaunchError(`machine '${r.agentMachine}' has no agent any more: cannot stop process ${r.pid}`);
    const ch = this.channel(r.agentMachine, agent);
    try {
      await ch.client.stop(r.agentProcess, this.cfg.stop_timeout_ms + STOP_SLACK_MS);
    } catch (err) {
      if (err instanceof AgentError) throw new LaunchError(`stop failed: ${err.message}`, { machine: r.agentMachine });
      throw err;
    }
    ch.unwatch(r.agentProcess);
    if (this.current === handle) this.current = null;
    ctx.log.debug(
      { event_type: 'service_process_stopped', pid: r.pid, machine: r.agentMachine },
      'stopped by the agent',
    );
  }

  /** Gateway shutdown: an agent's process runs on (re-adopted later); stop listening to its channel. */
  async close(): Promise<void> {
    const h = this.current;
    const r = h ? this.remote.get(h) : undefined;
    if (!r) return;
    const agent = this.agentOf(r.agentMachine);
    if (agent) this.channel(r.agentMachine, agent).unwatch(r.agentProcess);
  }

  async adopt(persisted: Record<string, unknown>, ctx: LaunchContext): Promise<LaunchHandle | null> {
    const p = persisted as Partial<AgentPersist>;
    if (typeof p.agentMachine !== 'string' || typeof p.agentProcess !== 'string' || typeof p.pid !== 'number') {
      const h = await this.local.adopt(persisted, ctx);
      if (h) this.current = h;
      return h;
    }
    const agent = this.agentOf(p.agentMachine);
    if (!agent) return null;
    const ch = this.channel(p.agentMachine, agent);
    const info = await ch.client.get(p.agentProcess, ctx.signal);
    if (!info?.running) return null;
    ctx.log.info(
      { event_type: 'service_process_adopted', pid: info.pid, machine: p.agentMachine },
      `service '${ctx.serviceId}' re-adopted its process on '${p.agentMachine}' (pid ${info.pid})`,
    );
    return this.remoteHandle(
      ch,
      { agentMachine: p.agentMachine, agentProcess: p.agentProcess, pid: info.pid },
      true,
      ctx.output,
    );
  }
}

export const placedProcessLauncherFactory: LauncherFactory<ProcessLauncherConfig> = (cfg, deps) =>
  new PlacedProcessLauncher(cfg, deps);
