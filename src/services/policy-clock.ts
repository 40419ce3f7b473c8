/**
 * The time source of the lifecycle policies (keep-warm windows): the current time and one-shot
 * timers. Injected so that tests can move through a day without waiting for it.
 */
export interface PolicyTimer {
  cancel(): void;
}

export interface PolicyClock {
  /** Epoch milliseconds (windows are read in the gateway's local time zone). */
  now(): number;
  /** Call `fn` once, `ms` from now. The timer must not keep the process alive. */
  setTimer(fn: () => void, ms: number): PolicyTimer;
}

export const realClock: PolicyClock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return { cancel: () => clearTimeout(t) };
  },
};
