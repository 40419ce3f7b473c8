/**
 * Every process group this gateway launched and has not seen stopped. On any exit path of the
 * gateway process that still runs JavaScript (normal exit, an uncaught exception, an unhandled
 * rejection, process.exit), the groups are SIGKILLed synchronously so no child outlives us.
 * (SIGKILL of the gateway itself cannot be caught; a restarted gateway re-adopts or cleans up
 * the children it recorded in the store.)
 */
import { signalGroup } from './group.ts';

const live = new Set<number>();
let hooked = false;

function killAllSync(): void {
  for (const pgid of live) {
    try {
      signalGroup(pgid, 'SIGKILL');
    } catch {
      // EPERM: not ours any more; nothing to do on the way out.
    }
  }
  live.clear();
}

export function trackGroup(pgid: number): void {
  live.add(pgid);
  if (!hooked) {
    hooked = true;
    process.on('exit', killAllSync);
  }
}

export function untrackGroup(pgid: number): void {
  live.delete(pgid);
}

/** Groups currently tracked (tests). */
export function trackedGroups(): number[] {
  return [...live];
}
