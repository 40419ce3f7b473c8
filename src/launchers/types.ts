/**
 * The launcher interface: how the lifecycle core starts and stops a service's backing
 * process, job, container or remote action. The core declares what it needs here; each
 * launcher is one folder (`process/`, `ssh/`, …) that implements it. The core never switches
 * on the launcher type: it looks the factory up in launcher-factories.ts.
 *
 * Contract, per call:
 * - `start(ctx)` resolves once the launch *action* is done (process spawned, job submitted and
 *   RUNNING, container started, task succeeded). Readiness (health_url / warmup_ms) is the
 *   core's job afterwards. It rejects with a `LaunchError` whose message says what went wrong
 *   (stderr, exit code, HTTP status, task status). It honours `ctx.signal`: when aborted
 *   (start timeout, shutdown) it gives up and cleans up whatever it had begun.
 * - `stop(handle, ctx)` resolves when the thing is stopped (or was already gone). It must not
 *   throw for "already stopped"; it rejects only when the stop could not be done.
 * - `handle.exited`, when present, settles when the launched thing ends on its own (a crash,
 *   a Slurm job hitting its time limit). The core treats that as `service_crashed` unless it
 *   was the core's own stop.
 * - `adopt(persisted, ctx)`, optional: after a gateway restart, given what `handle.persist`
 *   held, return a live handle if the thing is still running and still ours, else null.
 * - `isRunning(ctx)`, optional: a cheap "is it up" check (ssh is_running_command, docker
 *   inspect) used when adopting and for status.
 * - `pause(handle, ctx)` / `resume(handle, ctx)`, optional (`stop_mode: pause`): freeze the
 *   launched thing in place (process group SIGSTOP, docker pause) and thaw it (SIGCONT,
 *   unpause). Both keep the handle valid; `stop` of a paused handle thaws it so the stop signal
 *   is acted on. A launcher without them cannot be configured with `stop_mode: pause`.
 */
import type { LauncherConfig } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import type { OutputSink } from '../observability/output-ring.ts';
import type { PlacedMachine, TemplateVars } from '../remote/templates.ts';

// Shared with machines/ (wake and sleep actions), so defined in remote/ and re-exported here.
export { LaunchError } from '../remote/errors.ts';
export { expandTemplate, type PlacedMachine, type TemplateVars } from '../remote/templates.ts';

export interface LaunchContext {
  serviceId: string;
  machine: PlacedMachine;
  vars: TemplateVars;
  log: Logger;
  /** Aborted when the start is abandoned (start_timeout_ms, shutdown). */
  signal: AbortSignal;
  /**
   * The service's output ring (SPEC §12): a launcher writes what the launched thing prints here
   * (process stdout/stderr, container logs, a remote command's output, a job's output file).
   * The ring bounds, masks and logs it. Absent when a launcher is used outside the lifecycle.
   */
  output?: OutputSink;
}

export interface ExitInfo {
  code: number | null;
  signal: string | null;
  /** Human sentence: "exited with code 1", "job 12 ended: TIMEOUT". */
  reason: string;
}

export interface LaunchHandle {
  /** Settles when the launched thing ends on its own or after stop. Never rejects. */
  exited?: Promise<ExitInfo>;
  /** Replaces `{host}` in base_url/health_url after the start (a Slurm job's node). */
  host?: string;
  /** JSON-serialisable facts the store keeps for adopting after a restart (pid, job id, …). */
  persist?: Record<string, unknown>;
  /** Shown in status (e.g. the Semaphore `automation` object). */
  info?: Record<string, unknown>;
}

export interface Launcher {
  readonly type: string;
  /**
   * True when what this launcher starts cannot outlive the gateway (local child processes):
   * the core stops it at gateway shutdown (SPEC §1). Otherwise (remote processes, containers,
   * jobs) it is left running at shutdown, recorded in the store, and re-adopted at boot.
   */
  readonly stopOnShutdown?: boolean;
  start(ctx: LaunchContext): Promise<LaunchHandle>;
  stop(handle: LaunchHandle, ctx: LaunchContext): Promise<void>;
  adopt?(persisted: Record<string, unknown>, ctx: LaunchContext): Promise<LaunchHandle | null>;
  isRunning?(ctx: LaunchContext): Promise<boolean>;
  /** Freeze what `handle` runs (stop_mode: pause). Rejects when it could not be paused. */
  pause?(handle: LaunchHandle, ctx: LaunchContext): Promise<void>;
  /** Thaw what `pause` froze. Rejects when it could not be resumed (it is gone). */
  resume?(handle: LaunchHandle, ctx: LaunchContext): Promise<void>;
  /** Status extras for GET /v1/services/{id}/status, e.g. `automation`. */
  statusInfo?(): Record<string, unknown> | undefined;
  /** Release long-lived resources (ssh connections) at gateway shutdown. */
  close?(): Promise<void>;
}

/** What a launcher factory gets besides its own config block. */
export interface LauncherDeps {
  serviceId: string;
  /** The whole resolved config, for global settings (semaphore_base_url, machines). */
  config: import('../config/schema.ts').Config;
  log: Logger;
}

export type LauncherFactory<C extends LauncherConfig = LauncherConfig> = (config: C, deps: LauncherDeps) => Launcher;
