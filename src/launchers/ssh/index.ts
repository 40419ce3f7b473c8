/**
 * The `ssh` launcher (SPEC §5): run `command` on a machine over SSH to start the service,
 * `stop_command` to stop it, `is_running_command` (exit 0 = running) to ask.
 *
 * - Machine: `launcher.machine`, else the machine the service was placed on. Connection
 *   settings come from `machines.<id>.ssh` (key auth, pinned host key; see host-key.ts).
 * - Every remote command is bounded by `timeout_ms`; a non-zero exit fails the start/stop
 *   with the exit code and stderr (→ the `service_start_failed` event).
 * - The start command must detach the server (see exec.ts for the `setsid nohup … &` rule),
 *   so the remote server is not a child we can watch. With `is_running_command` and
 *   `watch_interval_ms` > 0, `exited` settles when that check says it is gone (watch.ts);
 *   otherwise there is no `exited`.
 * - Without `stop_command`, stop does nothing remotely (logged): the service is only marked cold.
 * - Output (SPEC §12): the start command's stdout/stderr go to the service's output ring
 *   (`ctx.output`); with `log_command` (e.g. `tail -n 0 -F ~/serve.log`) that command is
 *   followed into the ring while the service is hot (restarted after a pause if it ends), and
 *   ended by close, and by stop once the stop command ran and the log went quiet (so the lines
 *   the server wrote while stopping are kept).
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { SshLauncherConfig } from '../../config/schema.ts';
import { type SshTarget, sshTargetFor } from '../../remote/ssh/connection.ts';
import { runSshChecked, runSshCommand } from '../../remote/ssh/exec.ts';
import {
  expandTemplate,
  type LaunchContext,
  type Launcher,
  type LauncherFactory,
  type LaunchHandle,
} from '../types.ts';
import { type RemoteWatch, watchRemote } from './watch.ts';

/** After a stop command: the log follow ends once quiet this long (at most LOG_DRAIN_MAX_MS). */
const LOG_DRAIN_QUIET_MS = 500;
const LOG_DRAIN_MAX_MS = 5_000;
/** Pause before a `log_command` that ended is run again. */
const LOG_RETRY_MS = 2_000;
/** A `log_command` runs until stopped: its "timeout" is the longest a timer allows. */
const LOG_COMMAND_TIMEOUT_MS = 2_147_000_000;

export const createSshLauncher: LauncherFactory<SshLauncherConfig> = (config, deps): Launcher => {
  const target = (ctx: LaunchContext): SshTarget =>
    sshTargetFor(deps.config, config.machine ?? ctx.machine.id, ctx.machine);
  const watches = new Set<RemoteWatch>();
  const watchOf = new WeakMap<LaunchHandle, RemoteWatch>();
  /** `log_command` follows in progress (one per running server). */
  const follows = new Set<AbortController>();
  /** When a `log_command` last delivered output (for the drain before a stop completes). */
  let lastLogOutputAt = 0;

  const followLog = (t: SshTarget, ctx: LaunchContext): void => {
    const out = ctx.output;
    if (!config.log_command || !out) return;
    const command = expandTemplate(config.log_command, ctx.vars);
    const ac = new AbortController();
    follows.add(ac);
    void (async () => {
      let warned = false;
      while (!ac.signal.aborted) {
        try {
          await runSshCommand(t, command, {
            timeoutMs: LOG_COMMAND_TIMEOUT_MS,
            signal: ac.signal,
            onData: (stream, data) => {
              lastLogOutputAt = Date.now();
              out.write(stream === 'stdout' ? 'log' : 'stderr', data);
            },
          });
        } catch (err) {
          if (ac.signal.aborted) break;
          if (!warned)
            ctx.log.warn(
              { event_type: 'launcher_ssh', machine: t.machineId, err: (err as Error).message },
              'log_command failed; will retry',
            );
          warned = true;
        }
        out.end('log');
        out.end('stderr');
        await delay(LOG_RETRY_MS, undefined, { signal: ac.signal }).catch(() => {});
      }
      follows.delete(ac);
    })();
  };
  const stopFollowing = (): void => {
    for (const ac of follows) ac.abort();
    follows.clear();
  };
  /**
   * Before a stop completes: let the follow deliver what the server wrote while it stopped (a
   * `tail -F` never ends by itself, so "done" is LOG_DRAIN_QUIET_MS without new output after the
   * stop command, at most LOG_DRAIN_MAX_MS), then end it.
   */
  const drainFollowing = async (): Promise<void> => {
    if (follows.size === 0) return;
    const stoppedAt = Date.now();
    const deadline = stoppedAt + LOG_DRAIN_MAX_MS;
    for (;;) {
      const quietFor = Date.now() - Math.max(stoppedAt, lastLogOutputAt);
      if (quietFor >= LOG_DRAIN_QUIET_MS || Date.now() >= deadline) break;
      await delay(Math.min(LOG_DRAIN_QUIET_MS - quietFor, deadline - Date.now()) + 1);
    }
    stopFollowing();
  };

  /** The handle for a started/adopted server, with a crash watch when configured. */
  const handleFor = (t: SshTarget, ctx: LaunchContext, extraInfo: Record<string, unknown> = {}): LaunchHandle => {
    const h: LaunchHandle = { persist: { machine: t.machineId }, info: { machine: t.machineId, ...extraInfo } };
    if (config.is_running_command && config.watch_interval_ms > 0) {
      const w = watchRemote(t, expandTemplate(config.is_running_command, ctx.vars), {
        intervalMs: config.watch_interval_ms,
        timeoutMs: config.timeout_ms,
        log: ctx.log,
      });
      watches.add(w);
      void w.exited.then(() => watches.delete(w));
      h.exited = w.exited;
      watchOf.set(h, w);
    }
    return h;
  };

  return {
    type: 'ssh',

    async start(ctx: LaunchContext): Promise<LaunchHandle> {
      const t = target(ctx);
      const command = expandTemplate(config.command, ctx.vars);
      ctx.log.debug({ event_type: 'launcher_ssh', machine: t.machineId, host: t.host }, 'ssh start command');
      const out = ctx.output;
      let r: Awaited<ReturnType<typeof runSshChecked>>;
      try {
        r = await runSshChecked(t, command, {
          timeoutMs: config.timeout_ms,
          signal: ctx.signal,
          what: 'ssh start command',
          onData: out ? (stream, data) => out.write(stream, data) : undefined,
        });
      } finally {
        out?.end('stdout');
        out?.end('stderr');
      }
      const stdout = r.stdout.trim();
      stopFollowing();
      followLog(t, ctx);
      return handleFor(t, ctx, stdout ? { stdout: stdout.slice(0, 200) } : {});
    },

    async stop(handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
      // Our own stop is not a crash: settle the watch first, so its next check cannot race it.
      watchOf.get(handle)?.stopped();
      if (!config.stop_command) {
        stopFollowing();
        ctx.log.warn({ event_type: 'launcher_ssh' }, 'ssh launcher has no stop_command; nothing stopped remotely');
        return;
      }
      const t = target(ctx);
      try {
        // The stop is not abandoned with the start's signal: a stop runs to its own timeout.
        await runSshChecked(t, expandTemplate(config.stop_command, ctx.vars), {
          timeoutMs: config.timeout_ms,
          what: 'ssh stop_command',
        });
      } finally {
        // The log follow outlives the stop command a little: the server's last lines are kept.
        await drainFollowing();
      }
    },

    ...(config.is_running_command
      ? {
          async isRunning(ctx: LaunchContext): Promise<boolean> {
            const cmd = expandTemplate(config.is_running_command!, ctx.vars);
            const r = await runSshCommand(target(ctx), cmd, { timeoutMs: config.timeout_ms, signal: ctx.signal });
            return r.code === 0;
          },
          async adopt(_persisted: Record<string, unknown>, ctx: LaunchContext): Promise<LaunchHandle | null> {
            const cmd = expandTemplate(config.is_running_command!, ctx.vars);
            const t = target(ctx);
            const r = await runSshCommand(t, cmd, { timeoutMs: config.timeout_ms, signal: ctx.signal });
            if (r.code !== 0) return null;
            followLog(t, ctx);
            return handleFor(t, ctx);
          },
        }
      : {}),

    async close(): Promise<void> {
      stopFollowing();
      for (const w of watches) w.cancel();
      watches.clear();
    },
  };
};

export default createSshLauncher;
