/**
 * Signalling and stopping a whole process group. Children are spawned with `detached: true`,
 * so each is the leader of its own group (pgid = its pid) and everything it forks (a shell's
 * children, a server's workers) is in that group: signalling `-pgid` reaches all of them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { HAS_PROC, liveGroupMembers, readStat } from './proc.ts';

/** Send `sig` to the group; false when the group no longer exists. */
export function signalGroup(pgid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

export function groupAlive(pgid: number): boolean {
  return liveGroupMembers(pgid).length > 0;
}

const GROUP_POLL_MS = 50;

/**
 * Stop a group: `stopSignal` to every member, then SIGKILL to the group once `timeoutMs` has
 * passed with any member still alive. `leaderExited` settles when the leader is reaped (the
 * fast path: most programs exit on SIGTERM). Resolves when no live member is left, or after
 * the SIGKILL and a bounded final wait.
 */
export async function stopGroup(
  pgid: number,
  stopSignal: NodeJS.Signals,
  timeoutMs: number,
  leaderExited: Promise<unknown>,
  /** The group is SIGSTOPped (stop_mode: pause): SIGCONT right after the stop signal. */
  continueAfter = false,
): Promise<void> {
  if (!groupAlive(pgid)) return;
  signalGroup(pgid, stopSignal);
  if (continueAfter) signalGroup(pgid, 'SIGCONT');
  const deadline = Date.now() + timeoutMs;
  const ac = new AbortController();
  await Promise.race([leaderExited, sleep(timeoutMs, undefined, { signal: ac.signal }).catch(() => {})]);
  ac.abort();
  // The leader is gone (or the time is up): other members got the signal too; give them what
  // is left of the timeout. This short poll only runs during a stop, bounded by the timeout.
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(GROUP_POLL_MS);
  if (!groupAlive(pgid)) return;
  signalGroup(pgid, 'SIGKILL');
  const killDeadline = Date.now() + 2_000;
  while (groupAlive(pgid) && Date.now() < killDeadline) await sleep(GROUP_POLL_MS);
}

/**
 * After SIGSTOP: resolves once every live member of the group shows as stopped (`T`) in /proc
 * (a signal is delivered when the process is next scheduled, not when kill returns), or after
 * `timeoutMs`. Without /proc it resolves at once.
 */
export async function waitGroupStopped(pgid: number, timeoutMs = 2_000): Promise<void> {
  if (!HAS_PROC) return;
  const deadline = Date.now() + timeoutMs;
  const stopped = () => liveGroupMembers(pgid).every((pid) => readStat(pid)?.state === 'T');
  while (!stopped() && Date.now() < deadline) await sleep(5);
}
