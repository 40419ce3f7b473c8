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
 */
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

export const createSshLauncher: LauncherFactory<SshLauncherConfig> = (config, deps): Launcher => {
  const target = (ctx: LaunchContext): SshTarget =>
    sshTargetFor(deps.config, config.machine ?? ctx.machine.id, ctx.machine);
  const watches = new Set<RemoteWatch>();
  const watchOf = new WeakMap<LaunchHandle, RemoteWatch>();

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
      const r = await runSshChecked(t, command, {
        timeoutMs: config.timeout_ms,
        signal: ctx.signal,
        what: 'ssh start command',
      });
      const stdout = r.stdout.trim();
      return handleFor(t, ctx, stdout ? { stdout: stdout.slice(0, 200) } : {});
    },

    async stop(handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
      // Our own stop is not a crash: settle the watch first, so its next check cannot race it.
      watchOf.get(handle)?.stopped();
      if (!config.stop_command) {
        ctx.log.warn({ event_type: 'launcher_ssh' }, 'ssh launcher has no stop_command; nothing stopped remotely');
        return;
      }
      const t = target(ctx);
      // The stop is not abandoned with the start's signal: a stop runs to its own timeout.
      await runSshChecked(t, expandTemplate(config.stop_command, ctx.vars), {
        timeoutMs: config.timeout_ms,
        what: 'ssh stop_command',
      });
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
            return r.code === 0 ? handleFor(t, ctx) : null;
          },
        }
      : {}),

    async close(): Promise<void> {
      for (const w of watches) w.cancel();
      watches.clear();
    },
  };
};

export default createSshLauncher;
