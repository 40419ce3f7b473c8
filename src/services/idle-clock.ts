/**
 * One service's idle clock (services/DESIGN.md, "Idle"): when the idle stop is due, the one
 * timer that fires for it, the idle token, and the busy_check asked before stopping.
 *
 * It never changes the service's state: it asks its host (the ServiceRuntime) whether an idle
 * stop is allowed right now and, when it is due, calls `host.idle()`, which makes the
 * transition. A busy check carries the idle token it began with: any disarm (a new lease, a
 * touch, a stop) bumps the token, and an answer that arrives after that stands down.
 */
import type { BusyResult } from './busy-check.ts';

export interface IdleHost {
  /** `idle_timeout_ms` as configured now (0 = never idle-stopped). */
  idleTimeoutMs(): number;
  /** Whether the service could be idle-stopped now: hot, nothing in flight or queued, not shutting down. */
  idleAllowed(): boolean;
  /**
   * Why a lifecycle policy keeps it up right now (a keep-warm window, a hot dependent, a group
   * member in use), or null. Asked when the stop is due, after `idleAllowed`: a held service
   * keeps its (passed) deadline and is re-armed by the policy coordinator when the hold ends.
   */
  held?(): string | null;
  /** Its busy_check answer, or null (decided synchronously) when it has none. Never rejects. */
  checkBusy(): Promise<BusyResult> | null;
  /** The busy check said busy: the clock re-arms a full period. */
  postponed(detail: string): void;
  /** The idle stop is due: the host begins `hot → stopping` (cause `idle`). */
  idle(details: Record<string, unknown>): void;
}

export class IdleClock {
  private timer: NodeJS.Timeout | null = null;
  /** When the pending timer fires (may be before `deadline`: see arm). */
  private timerAt = 0;
  /** When the idle stop is due; null = not armed. */
  private deadline: number | null = null;
  /** Bumped whenever the clock is (re-)armed or disarmed: an in-flight busy check then stands down. */
  private token = 0;

  constructor(private readonly host: IdleHost) {}

  /** Milliseconds until the idle stop, or null when none is due. */
  remainingMs(now = Date.now()): number | null {
    return this.deadline === null ? null : Math.max(0, this.deadline - now);
  }

  /**
   * Arm the idle stop: due `idle_timeout_ms` after `since` (default now). Only when enabled and
   * the host allows it (hot, nothing in flight or waiting).
   *
   * The deadline moves on every release, but the timer does not: it is created once and, when
   * it fires early (the deadline moved meanwhile), re-scheduled for the remainder. A busy
   * service thus costs one timer per idle period, not one per request.
   */
  arm(since = Date.now()): void {
    this.token++;
    const ms = this.host.idleTimeoutMs();
    if (ms <= 0 || !this.host.idleAllowed()) {
      this.deadline = null;
      return;
    }
    this.deadline = since + ms;
    // A pending timer due later than the new deadline (re-adoption with an old lastUsedAt,
    // or a shorter period after a config change) is replaced; an earlier one is kept.
    if (this.timer && this.timerAt > this.deadline) this.clearTimer();
    if (!this.timer) this.schedule(this.deadline);
  }

  /** No idle stop is due (a request is in flight, or the service is not hot). */
  disarm(): void {
    this.deadline = null;
    this.token++;
  }

  /** Disarm and drop the pending timer (shutdown). */
  close(): void {
    this.disarm();
    this.clearTimer();
  }

  private schedule(at: number): void {
    this.timerAt = at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, at - Date.now()));
    // The gateway's server keeps the process alive; a pending idle stop alone should not.
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private fire(): void {
    this.timer = null;
    const deadline = this.deadline;
    if (deadline === null) return;
    if (Date.now() < deadline) {
      this.schedule(deadline);
      return;
    }
    if (!this.host.idleAllowed()) return;
    const hold = this.host.held?.() ?? null;
    if (hold !== null) {
      this.host.postponed(hold);
      return;
    }
    const busy = this.host.checkBusy();
    if (!busy) {
      this.host.idle({});
      return;
    }
    const token = this.token;
    void busy.then((res) => {
      // Any acquire/touch/stop since the timer fired disarmed (bumped the token): stand down.
      if (token !== this.token || !this.host.idleAllowed() || (this.host.held?.() ?? null) !== null) return;
      if (res.busy) {
        this.host.postponed(res.detail);
        this.arm();
        return;
      }
      this.host.idle({ busyCheck: res.detail });
    });
  }
}
