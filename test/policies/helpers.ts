/**
 * Pieces of the lifecycle-policy tests: a registry (no HTTP) with an injectable policy clock,
 * and a hand-moved clock for keep-warm windows.
 */
import type { PolicyClock, PolicyTimer } from '../../src/services/policy-clock.ts';
import type { Store } from '../../src/store/store.ts';
import { registryFor, type TestRegistry } from '../helpers/lifecycle.ts';

/** A registry for `services` (test/helpers/lifecycle.ts registryFor), with `clock` for keep-warm. */
export function policyRegistry(
  services: Record<string, unknown>,
  clock?: PolicyClock,
  store: Store | null = null,
): TestRegistry {
  return registryFor({ services }, store, clock);
}

/** A clock moved by hand: `advanceTo` fires the timers due by then, in order. */
export class ManualClock implements PolicyClock {
  private timers: Array<{ at: number; fn: () => void; live: boolean }> = [];
  constructor(private t: number) {}
  now(): number {
    return this.t;
  }
  setTimer(fn: () => void, ms: number): PolicyTimer {
    const timer = { at: this.t + ms, fn, live: true };
    this.timers.push(timer);
    return { cancel: () => (timer.live = false) };
  }
  /** Live timers (for "nothing leaks" checks). */
  pending(): number {
    return this.timers.filter((x) => x.live).length;
  }
  advanceTo(t: number): void {
    for (;;) {
      const due = this.timers.filter((x) => x.live && x.at <= t).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      due.live = false;
      this.t = due.at;
      due.fn();
    }
    this.timers = this.timers.filter((x) => x.live);
    this.t = t;
  }
}

/** Event types of `events` for `ids` in order, as `type:id` strings. */
export function sequence(t: TestRegistry, types: string[], ids?: string[]): string[] {
  return t.events.events
    .filter((e) => types.includes(e.type) && (ids === undefined || (e.serviceId !== null && ids.includes(e.serviceId))))
    .map((e) => `${e.type}:${e.serviceId}`);
}
