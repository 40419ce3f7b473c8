/**
 * `queue_rejected` throttling (services/DESIGN.md, "The queue"): at most one report per
 * interval, so a flood of rejections cannot flood the log or push lifecycle events out of the
 * store's retention. Each report's `count` says how many rejections it stands for; the
 * rejections of a window are reported when it ends (never lost). It only counts and times:
 * the host publishes the event.
 */
export class RejectionThrottle {
  private pending = 0;
  private lastReportAt = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    /** Publish one `queue_rejected` event standing for `count` rejections. */
    private readonly report: (count: number) => void,
    private readonly intervalMs: number,
  ) {}

  /** One more rejection. */
  note(): void {
    this.pending++;
    const wait = this.lastReportAt + this.intervalMs - Date.now();
    if (wait <= 0) {
      this.flush();
      return;
    }
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, wait);
      this.timer.unref();
    }
  }

  /** Report what is pending now and drop the timer (shutdown). */
  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.flush();
  }

  private flush(): void {
    if (this.pending === 0) return;
    this.lastReportAt = Date.now();
    const count = this.pending;
    this.pending = 0;
    this.report(count);
  }
}
