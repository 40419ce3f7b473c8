/**
 * The `docker` launcher (SPEC §5): start/stop one named container through the Docker
 * Engine API (unix `socket`, or `docker_host: tcp://host:port`), creating it from the
 * `create` block when it does not exist yet.
 *
 * - start: inspect → (404: create, or fail "container 'x' not found" without `create`) →
 *   start (204, or 304 already running) → inspect again: a container that died at once
 *   fails the start with its exit code and last log lines.
 * - stop: `POST /stop?t=stop_timeout_s` (Docker's SIGTERM → SIGKILL); stopped/absent is fine.
 *   The container is kept (not removed), so the next start is a fast restart.
 * - pause/resume (stop_mode: pause): `POST /pause`, `/unpause`. A container found paused when
 *   starting (left paused by an earlier gateway) is unpaused, not restarted.
 * - exited: a `wait` long-poll (watch.ts); isRunning/adopt: inspect `State.Running`.
 * - output: the container's logs are followed (`logs?follow=true`, from the start's time; the
 *   last 100 lines on adopt) into the service's output ring (`ctx.output`) while it runs.
 */
import type { DockerLauncherConfig } from '../../config/schema.ts';
import { excerpt } from '../../remote/output-excerpt.ts';
import { type LaunchContext, LaunchError, type Launcher, type LauncherFactory, type LaunchHandle } from '../types.ts';
import { type ContainerInspect, DockerApi, describeEndpoint } from './api.ts';
import { createSpec } from './create-spec.ts';
import { type ExitWatch, watchExit } from './watch.ts';

export { type ContainerInspect, DockerApi, type DockerEndpoint, demuxLogs } from './api.ts';
export { createSpec } from './create-spec.ts';

/** After a stop: how long the log follow may take to deliver the container's last lines. */
const LOG_DRAIN_MAX_MS = 5_000;

export const createDockerLauncher: LauncherFactory<DockerLauncherConfig> = (config, _deps): Launcher => {
  const name = config.container;
  const api = new DockerApi({ socket: config.socket, dockerHost: config.docker_host });
  const watches = new Set<ExitWatch>();
  const where = describeEndpoint(api.endpoint);
  /** Log follows in progress (ended by stop and close; they also end when the container stops). */
  const follows = new Map<AbortController, Promise<void>>();
  /** Paused by `pause` and not resumed since (the stop thaws it first). */
  let paused = false;

  const follow = (info: ContainerInspect, ctx: LaunchContext, from: { since?: string; tail?: number }): void => {
    const out = ctx.output;
    if (!out) return;
    const ac = new AbortController();
    const done = api
      .followLogs(info.Id, { ...from, tty: info.Config?.Tty === true, signal: ac.signal }, (stream, data) =>
        out.write(stream, data),
      )
      .catch((err: unknown) => {
        if (!ac.signal.aborted)
          ctx.log.warn(
            { event_type: 'launcher_docker', container: name, err: (err as Error).message },
            'following the container logs failed',
          );
      })
      .finally(() => {
        follows.delete(ac);
        out.end('stdout');
        out.end('stderr');
      });
    follows.set(ac, done);
  };
  const stopFollowing = (): void => {
    for (const ac of follows.keys()) ac.abort();
    follows.clear();
  };
  /**
   * After the container stopped: the daemon ends the log stream once it sent everything the
   * container wrote, so wait for that (its last lines, e.g. what it printed on SIGTERM), at most
   * LOG_DRAIN_MAX_MS for a daemon that keeps it open, then end what is left.
   */
  const drainFollowing = async (): Promise<void> => {
    const pending = [...follows.values()];
    if (pending.length > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled(pending),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, LOG_DRAIN_MAX_MS);
        }),
      ]);
      clearTimeout(timer);
    }
    stopFollowing();
  };

  const handleFor = (info: ContainerInspect, ctx: LaunchContext): LaunchHandle => {
    const w = watchExit(api, info.Id, name, ctx.log);
    watches.add(w);
    void w.exited.then(() => watches.delete(w));
    return {
      exited: w.exited,
      persist: { container: name, id: info.Id },
      info: { container: name, id: info.Id.slice(0, 12), ...(info.Config?.Image ? { image: info.Config.Image } : {}) },
    };
  };

  return {
    type: 'docker',

    async start(ctx: LaunchContext): Promise<LaunchHandle> {
      // This run's output only (`since` in unix seconds; fractions as the docker CLI sends them).
      const since = Date.now() / 1000;
      let info = await api.inspect(name);
      if (!info) {
        if (!config.create)
          throw new LaunchError(`container '${name}' not found at ${where} (and no 'create' block to create it)`, {
            container: name,
            endpoint: where,
          });
        ctx.log.info(
          { event_type: 'launcher_docker', container: name, image: config.create.image },
          'creating container',
        );
        await api.create(name, createSpec(config.create, ctx.vars));
      }
      ctx.signal.throwIfAborted();
      if (info?.State.Paused) await api.unpause(name);
      else if (!info?.State.Running) await api.start(name);
      info = await api.inspect(name);
      if (!info) throw new LaunchError(`container '${name}' disappeared right after start`, { container: name });
      if (!info.State.Running) {
        const logs = excerpt(await api.logsTail(name), 500);
        throw new LaunchError(
          `container '${name}' exited right after start with code ${info.State.ExitCode}` +
            `${info.State.Error ? ` (${info.State.Error})` : ''}${logs ? `: ${logs}` : ''}`,
          { container: name, exitCode: info.State.ExitCode, logs },
        );
      }
      stopFollowing();
      follow(info, ctx, { since: since.toFixed(9) });
      return handleFor(info, ctx);
    },

    async stop(_handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
      // A paused container is thawed first, so that it gets its SIGTERM and the grace period.
      if (paused || (await api.inspect(name))?.State.Paused) await api.unpause(name).catch(() => {});
      paused = false;
      const r = await api.stop(name, config.stop_timeout_s).finally(drainFollowing);
      ctx.log.debug({ event_type: 'launcher_docker', container: name, result: r }, 'container stop');
    },

    async pause(_handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
      await api.pause(name);
      paused = true;
      ctx.log.debug({ event_type: 'launcher_docker', container: name }, 'container paused');
    },

    async resume(_handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
      await api.unpause(name);
      paused = false;
      ctx.log.debug({ event_type: 'launcher_docker', container: name }, 'container unpaused');
    },

    async isRunning(): Promise<boolean> {
      return (await api.inspect(name))?.State.Running === true;
    },

    async adopt(_persisted: Record<string, unknown>, ctx: LaunchContext): Promise<LaunchHandle | null> {
      const info = await api.inspect(name);
      if (!info?.State.Running) return null;
      follow(info, ctx, { tail: 100 });
      return handleFor(info, ctx);
    },

    async close(): Promise<void> {
      stopFollowing();
      for (const w of watches) w.cancel();
      watches.clear();
      await api.close();
    },
  };
};

export default createDockerLauncher;
