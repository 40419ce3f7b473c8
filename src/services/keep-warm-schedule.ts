/**
 * Keep-warm windows over time: which window covers each service now, and one timer for the
 * next moment any window of any service starts or ends. It only reports (`entered`, `left`);
 * the policy coordinator decides what to do. The timer is unref'd and capped (a clock jump or
 * a DST change is noticed within MAX_TIMER_MS); `close` cancels it.
 */
import {
  activeKeepWarmWindow,
  type KeepWarmWindow,
  nextKeepWarmChange,
  nextKeepWarmStart,
  parseKeepWarmWindows,
} from '../config/keep-warm.ts';
import type { PolicyClock, PolicyTimer } from './policy-clock.ts';
import type { KeepWarmState } from './types.ts';

/** Longest single timer: windows are re-read at least this often. */
export const MAX_TIMER_MS = 3_600_000;

export interface KeepWarmHost {
  /** A window of `id` began (or covers it at boot / after its windows changed). */
  entered(id: string, window: string): void;
  /** No window covers `id` any more. */
  left(id: string, window: string): void;
}

export class KeepWarmSchedule {
  private windows = new Map<string, { texts: string[]; parsed: KeepWarmWindow[] }>();
  /** The window each service was last seen in (absent: none). */
  private readonly current = new Map<string, string>();
  private timer: PolicyTimer | null = null;
  private closed = false;

  constructor(
    private readonly clock: PolicyClock,
    private readonly host: KeepWarmHost,
  ) {}

  /**
   * Take the services' windows (at boot and on every reload). A service whose windows changed
   * (or is new) is re-evaluated as if just configured: inside a window, `entered` is reported.
   */
  set(windows: Record<string, readonly string[]>): void {
    const next = new Map<string, { texts: string[]; parsed: KeepWarmWindow[] }>();
    for (const [id, texts] of Object.entries(windows)) {
      if (texts.length === 0) continue;
      const prev = this.windows.get(id);
      if (!prev || prev.texts.join('\n') !== texts.join('\n')) this.current.delete(id);
      next.set(id, { texts: [...texts], parsed: parseKeepWarmWindows(texts) });
    }
    for (const id of [...this.current.keys()]) if (!next.has(id)) this.current.delete(id);
    this.windows = next;
    this.evaluate();
  }

  /** The window covering `id` now, or null. */
  activeWindow(id: string): string | null {
    const w = this.windows.get(id);
    return w ? (activeKeepWarmWindow(w.parsed, this.clock.now())?.window.text ?? null) : null;
  }

  state(id: string): KeepWarmState | null {
    const w = this.windows.get(id);
    if (!w) return null;
    const now = this.clock.now();
    const active = activeKeepWarmWindow(w.parsed, now);
    const next = nextKeepWarmStart(w.parsed, now);
    return {
      windows: w.texts,
      active: active?.window.text ?? null,
      activeUntil: active ? new Date(active.until).toISOString() : null,
      nextStart: next === null ? null : new Date(next).toISOString(),
    };
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = null;
  }

  private evaluate(): void {
    this.timer?.cancel();
    this.timer = null;
    if (this.closed) return;
    const now = this.clock.now();
    let next: number | null = null;
    for (const [id, w] of this.windows) {
      const active = activeKeepWarmWindow(w.parsed, now)?.window.text ?? null;
      const before = this.current.get(id) ?? null;
      if (active !== null) this.current.set(id, active);
      else this.current.delete(id);
      if (active !== null && active !== before) this.host.entered(id, active);
      else if (active === null && before !== null) this.host.left(id, before);
      const change = nextKeepWarmChange(w.parsed, now);
      if (change !== null && (next === null || change < next)) next = change;
    }
    if (next !== null && !this.closed)
      this.timer = this.clock.setTimer(() => this.evaluate(), Math.min(Math.max(0, next - now), MAX_TIMER_MS));
  }
}
