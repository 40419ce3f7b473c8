/**
 * Launcher type → factory. The only place that knows which launchers exist: the lifecycle core
 * asks `createLauncher` and never switches on the type. Adding a launcher is one line here
 * (its folder exports a `LauncherFactory`).
 */
import type { LauncherConfig, LauncherType } from '../config/schema.ts';
import { placedProcessLauncherFactory } from './agent/index.ts';
import { createDockerLauncher } from './docker/index.ts';
import { createHttpLauncher } from './http/index.ts';
import { noneLauncherFactory } from './none/index.ts';
import { createSemaphoreLauncher } from './semaphore/index.ts';
import { createSlurmLauncher } from './slurm/index.ts';
import { createSshLauncher } from './ssh/index.ts';
import { LaunchError, type Launcher, type LauncherDeps, type LauncherFactory } from './types.ts';

type FactoryFor<K extends LauncherType> = LauncherFactory<Extract<LauncherConfig, { type: K }>>;
export type LauncherFactories = { [K in LauncherType]?: FactoryFor<K> };

export const launcherFactories: LauncherFactories = {
  none: noneLauncherFactory,
  // Local, or through the placed machine's agent (SPEC §15).
  process: placedProcessLauncherFactory,
  ssh: createSshLauncher,
  docker: createDockerLauncher,
  slurm: createSlurmLauncher,
  semaphore: createSemaphoreLauncher,
  http: createHttpLauncher,
};

/**
 * The launcher for a service's `launcher` block (`none` when absent). A type without a factory
 * yields a launcher whose every start fails with a clear message, so the rest of the gateway
 * keeps working.
 */
export function createLauncher(
  config: LauncherConfig | undefined,
  deps: LauncherDeps,
  factories: LauncherFactories = launcherFactories,
): Launcher {
  const cfg: LauncherConfig = config ?? { type: 'none' };
  // The map is keyed by the same discriminant as the config union, so this pairing is sound;
  // TypeScript cannot correlate the two through the index, hence the widening cast.
  const factory = factories[cfg.type] as LauncherFactory | undefined;
  if (factory) return factory(cfg, deps);
  return {
    type: cfg.type,
    async start() {
      throw new LaunchError(`launcher type '${cfg.type}' is not available in this build`);
    },
    async stop() {},
  };
}
