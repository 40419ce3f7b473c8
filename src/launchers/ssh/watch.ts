/**
 * Optional crash detection for a detached remote server: run `is_running_command` every
 * `watch_interval_ms`; the first definite "not running" (the command exits non-zero)
 * settles `exited`. A check that cannot be made (machine unreachable, timeout) is not a
 * verdict: it is logged once and retried, so a network blip does not mark the service
 * crashed. `stop()` settles it with "stopped"; `cancel()` (gateway shutdown) leaves it pending.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../../observability/logger.ts';
import type { SshTarget } from '../../remote/ssh/connection.ts';
import { runSshCommand } from '../../remote/ssh/exec.ts';
import type { ExitInfo } from '../types.ts';

export interface RemoteWatch {
  exited: Promise<ExitInfo>;
  /** Our own stop: settle with "stopped". */
  stopped(): void;
  /** Stop watching without settling (gateway shutdown is not a crash). */
  cancel(): void;
}

export function watchRemote(
  target: SshTarget,
  command: string,
  opts: { intervalMs: number; timeoutMs: number; log: Logger },
): RemoteWatch {
  const ac = new AbortController();
  let settle: (info: ExitInfo) => void = () => {};
  const exited = new Promise<ExitInfo>((resolve) => {
    settle = (info) => {
      ac.abort();
      resolve(info);
    };
  });
  void (async () => {
    let warned = false;
    while (!ac.signal.aborted) {
      try {
        await delay(opts.intervalMs, undefined, { signal: ac.signal });
        const r = await runSshCommand(target, command, { timeoutMs: opts.timeoutMs, signal: ac.signal });
        if (r.code !== 0 && !ac.signal.aborted) {
          settle({
            code: r.code,
            signal: r.signal,
            reason: `is_running_command on ${target.machineId} exited with code ${r.code ?? r.signal}`,
          });
        }
      } catch (err) {
        if (ac.signal.aborted) return;
        if (!warned)
          opts.log.warn(
            { event_type: 'launcher_ssh', machine: target.machineId, err: (err as Error).message },
            'is_running_command check failed; will retry',
          );
        warned = true;
      }
    }
  })();
  return {
    exited,
    stopped: () => settle({ code: null, signal: null, reason: 'stopped' }),
    cancel: () => ac.abort(),
  };
}
