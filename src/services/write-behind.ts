/**
 * A write that may lag (services/DESIGN.md, "Restart of the gateway"): `last_used_at` changes
 * on every request, but the hot path never waits on SQLite, so the runtime asks for a write
 * and gets at most one per `delayMs`, carrying the latest value. It only times the write: the
 * host says what to write.
 */
export class WriteBehind {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly write: () => void,
    private readonly delayMs: number,
  ) {}

  /** Write within `delayMs` (one write for every request made meanwhile). */
  request(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.write();
    }, this.delayMs);
    this.timer.unref();
  }

  /** Drop a pending write (at shutdown the final state row is written whole instead). */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
