/** Lifecycle events and log lines, recorded for assertions; waits on events, not polls. */
import { Writable } from 'node:stream';
import type { EventBus, EventType, HestiaEvent } from '../../src/observability/events.ts';
import { createLogger, type Logger } from '../../src/observability/logger.ts';

/** Records every event of a bus; `nth` waits (bounded) for one, woken by the event itself. */
export class EventRecorder {
  readonly events: HestiaEvent[] = [];
  private waiters: Array<() => void> = [];
  constructor(bus: EventBus) {
    bus.on('event', (ev) => {
      this.events.push(ev);
      for (const w of this.waiters.splice(0)) w();
    });
  }
  of(type: EventType, serviceId?: string): HestiaEvent[] {
    return this.events.filter((e) => e.type === type && (serviceId === undefined || e.serviceId === serviceId));
  }
  /** Resolve with the `n`-th (1-based) event of `type`, waiting for it when needed. */
  async nth(type: EventType, n: number, timeoutMs = 15_000): Promise<HestiaEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.of(type)[n - 1];
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out waiting for event ${type} #${n}; saw ${this.events.map((e) => e.type).join(', ')}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** Captured JSON log lines. */
export function captureLogger(): { log: Logger; lines(): Array<Record<string, unknown>> } {
  let text = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return {
    log: createLogger({ level: 'debug', destination: sink }),
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
