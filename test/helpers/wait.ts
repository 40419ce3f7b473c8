/**
 * The one polling wait of the test suite, for conditions nothing signals (a file appearing, a
 * remote port opening or closing, a process gone). Where an event exists, await it instead:
 * EventRecorder.nth (test/helpers/events.ts), waitForLine (log-lines.ts), Upstream
 * waitForConnections (upstream.ts), node:events `once`.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** What is awaited, for the timeout error: "timed out after N ms waiting for <message>". */
  message: string;
  /** Give up after this long (default 15 s). A bound, never a tuning knob: tests must not depend on it. */
  timeoutMs?: number;
  /** Between two checks (default 20 ms; more for checks that launch a process). */
  intervalMs?: number;
}

/** Resolve once `predicate` returns true; reject naming `message` after `timeoutMs`. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, opts: WaitOptions): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.message}`);
    await sleep(opts.intervalMs ?? 20);
  }
}
