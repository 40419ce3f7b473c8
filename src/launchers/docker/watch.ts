/**
 * `handle.exited` for a container: a long-poll `wait?condition=not-running` that returns
 * when the container stops, for whatever reason (crash, OOM, `docker stop` by someone, our
 * own stop). `not-running` (not `next-exit`) so a container that died between our start and
 * the wait is noticed at once instead of never.
 *
 * If the wait connection breaks (daemon restarted), fall back to an inspect every few
 * seconds and re-issue the wait while the container still runs. The promise never rejects;
 * `cancel()` (launcher close) leaves it pending, because a gateway shutting down is not a crash.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../observability/logger.ts';
import type { ExitInfo } from '../types.ts';
import type { DockerApi } from './api.ts';

const RETRY_MS = 2_000;

export interface ExitWatch {
  exited: Promise<ExitInfo>;
  cancel(): void;
}

function exitInfo(name: string, code: number | null): ExitInfo {
  return {
    code,
    signal: null,
    reason: code === null ? `container '${name}' is gone` : `container '${name}' exited with code ${code}`,
  };
}

export function watchExit(api: DockerApi, id: string, name: string, log: Logger): ExitWatch {
  const ac = new AbortController();
  const exited = new Promise<ExitInfo>((resolve) => {
    void (async () => {
      while (!ac.signal.aborted) {
        try {
          resolve(exitInfo(name, await api.wait(id, ac.signal)));
          return;
        } catch (err) {
          if (ac.signal.aborted) return;
          log.warn(
            { event_type: 'launcher_docker', container: name, err: (err as Error).message },
            'container wait broke; retrying',
          );
        }
        try {
          await delay(RETRY_MS, undefined, { signal: ac.signal });
          const info = await api.inspect(id);
          if (!info) return resolve(exitInfo(name, null));
          if (!info.State.Running) return resolve(exitInfo(name, info.State.ExitCode));
        } catch {
          // Aborted, or the daemon is still away: loop (the abort check ends it).
        }
      }
    })();
  });
  return { exited, cancel: () => ac.abort() };
}
