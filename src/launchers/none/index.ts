/**
 * The `none` launcher (the default; the original's behaviour): Hestia starts nothing. A
 * "start" is waiting for the upstream to become ready (health_url / warmup_ms) because
 * something else runs it; a "stop" only marks the service cold.
 */
import type { Launcher, LauncherFactory, LaunchHandle } from '../types.ts';

export class NoneLauncher implements Launcher {
  readonly type = 'none';
  async start(): Promise<LaunchHandle> {
    return {};
  }
  async stop(): Promise<void> {}
}

export const noneLauncherFactory: LauncherFactory = () => new NoneLauncher();
