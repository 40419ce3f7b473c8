/**
 * Event webhooks (config `webhooks:`, docs/webhooks.md): each lifecycle event a webhook subscribed
 * to is POSTed to its URL as JSON.
 *
 * - Never blocks the lifecycle: `onEvent` (a bus listener, called synchronously inside a
 *   transition) only appends to the webhook's queue; delivery runs on its own.
 * - In order per webhook: one POST at a time, the next event after the previous one was
 *   delivered or given up.
 * - Bounded retries: `max_attempts` tries with a doubling pause from `retry_delay_ms` (at most
 *   60 s); each try is bounded by `timeout_ms` (a receiver that accepts and never answers costs
 *   one timeout per try, never more). A 2xx answer is success; anything else is retried.
 * - Bounded queue: at `queue_size` waiting events the oldest is dropped and counted.
 * - Failures are visible: `hestia_webhook_deliveries_total{webhook, result="ok|failed|dropped"}`
 *   and a `webhook_failed` event (at most one per webhook per FAILURE_EVENT_INTERVAL_MS, with how
 *   many more failed meanwhile). A `webhook_failed` event goes only to webhooks that name it
 *   explicitly (not `*`), and never to the webhook it is about: no feedback loops.
 * - Reload: `configure()` keeps the queue of a webhook whose settings did not change, starts new
 *   ones, and ends removed ones (their pending events are discarded, a POST in flight aborted).
 */
import { randomUUID } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import { maskUrl } from '../config/mask.ts';
import type { WEBHOOK_EVENT_TYPES, WebhookConfig } from '../config/schema.ts';
import { request } from '../http-client.ts';
import { apiEvent } from './event-stream.ts';
import type { EventBus, EventType, HestiaEvent } from './events.ts';
import type { Logger } from './logger.ts';

// The config's list of event names and the bus's EventType must be the same set.
type ConfigEventName = (typeof WEBHOOK_EVENT_TYPES)[number];
type Same<A, B> = [Exclude<A, B>, Exclude<B, A>] extends [never, never] ? true : false;
const _eventNamesMatch: Same<ConfigEventName, EventType> = true;
void _eventNamesMatch;

/** Longest pause between two tries. */
export const MAX_RETRY_DELAY_MS = 60_000;
/** At most one `webhook_failed` event per webhook per this interval. */
export const FAILURE_EVENT_INTERVAL_MS = 60_000;

export type DeliveryResult = 'ok' | 'failed' | 'dropped';

export interface WebhookOptions {
  bus: EventBus;
  log: Logger;
  /** Where the deliveries counter is registered (the gateway's metrics registry). */
  registry?: Registry;
  /** Time source for the failure-event rate limit (tests). */
  clock?: () => number;
}

/** What a receiver gets: the event as `/v1/events` shows it (without the store's row id). */
export function webhookPayload(ev: HestiaEvent): Record<string, unknown> {
  const { id: _id, ...rest } = apiEvent(ev, null);
  return rest;
}

/** A webhook's name in metrics, logs and events: its URL, secrets masked, without the query. */
function label(url: string): string {
  const u = new URL(url);
  return maskUrl(`${u.origin}${u.pathname}`);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
  });
}

class WebhookTarget {
  readonly name: string;
  private readonly queue: HestiaEvent[] = [];
  private readonly abort = new AbortController();
  private pumping = false;
  private readonly all: boolean;
  private readonly types: ReadonlySet<string>;
  private lastFailureEventAt = Number.NEGATIVE_INFINITY;
  private suppressedFailures = 0;
  /** Set when the pump goes idle (tests and close() wait on it). */
  private idle: Promise<void> = Promise.resolve();
  private markIdle: () => void = () => {};

  constructor(
    readonly config: WebhookConfig,
    readonly key: string,
    private readonly owner: WebhookDispatcher,
  ) {
    this.name = label(config.url);
    this.all = config.events.includes('*');
    this.types = new Set(config.events);
  }

  wants(ev: HestiaEvent): boolean {
    if (ev.type === 'webhook_failed') return this.types.has(ev.type) && ev.details.webhook !== this.name;
    return this.all || this.types.has(ev.type);
  }

  enqueue(ev: HestiaEvent): void {
    if (this.abort.signal.aborted) return;
    if (this.queue.length >= this.config.queue_size) {
      this.queue.shift();
      this.owner.count(this.name, 'dropped');
    }
    this.queue.push(ev);
    if (!this.pumping) {
      this.pumping = true;
      this.idle = new Promise((resolve) => {
        this.markIdle = resolve;
      });
      void this.pump();
    }
  }

  /** Resolves once every queued event was delivered or given up. */
  drained(): Promise<void> {
    return this.idle;
  }

  close(): void {
    this.abort.abort();
    this.queue.length = 0;
  }

  private async pump(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.abort.signal.aborted) {
        const ev = this.queue.shift() as HestiaEvent;
        await this.deliver(ev);
      }
    } finally {
      this.pumping = false;
      this.markIdle();
    }
  }

  private async deliver(ev: HestiaEvent): Promise<void> {
    const c = this.config;
    const body = JSON.stringify(webhookPayload(ev));
    const delivery = randomUUID();
    let lastError = '';
    for (let attempt = 1; attempt <= c.max_attempts; attempt++) {
      if (this.abort.signal.aborted) return;
      if (attempt > 1) {
        await sleep(Math.min(MAX_RETRY_DELAY_MS, c.retry_delay_ms * 2 ** (attempt - 2)), this.abort.signal);
        if (this.abort.signal.aborted) return;
      }
      try {
        const res = await request(c.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'user-agent': 'hestia-webhook',
            'x-hestia-event': ev.type,
            'x-hestia-delivery': delivery,
            ...c.headers,
          },
          body,
          signal: this.abort.signal,
          headersTimeout: c.timeout_ms,
          bodyTimeout: c.timeout_ms,
        });
        // Read (and bound) the answer so the connection can be reused.
        await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
        if (res.statusCode >= 200 && res.statusCode < 300) {
          this.owner.count(this.name, 'ok');
          return;
        }
        lastError = `HTTP ${res.statusCode}`;
      } catch (err) {
        if (this.abort.signal.aborted) return;
        const e = err as { code?: string; message?: string };
        lastError = e.code ? `${e.code}: ${e.message ?? ''}` : String(e.message ?? err);
      }
    }
    this.owner.count(this.name, 'failed');
    this.reportFailure(ev, lastError);
  }

  private reportFailure(ev: HestiaEvent, error: string): void {
    const now = this.owner.now();
    if (now - this.lastFailureEventAt < FAILURE_EVENT_INTERVAL_MS) {
      this.suppressedFailures++;
      return;
    }
    this.lastFailureEventAt = now;
    const details = {
      webhook: this.name,
      event: ev.type,
      attempts: this.config.max_attempts,
      error: maskUrl(error),
      also_failed: this.suppressedFailures,
    };
    this.suppressedFailures = 0;
    this.owner.failed(details);
  }
}

export class WebhookDispatcher {
  private targets: WebhookTarget[] = [];
  private readonly counter: Counter<'webhook' | 'result'> | null;
  private readonly clock: () => number;

  constructor(private readonly opts: WebhookOptions) {
    this.clock = opts.clock ?? Date.now;
    this.counter = opts.registry
      ? new Counter({
          name: 'hestia_webhook_deliveries_total',
          help: 'Webhook deliveries by result: ok (2xx), failed (all tries failed), dropped (queue full)',
          labelNames: ['webhook', 'result'],
          registers: [opts.registry],
        })
      : null;
  }

  /** The webhooks of a (new) config: unchanged ones keep their queue. */
  configure(webhooks: readonly WebhookConfig[]): void {
    const old = new Map(this.targets.map((t) => [t.key, t]));
    const next: WebhookTarget[] = [];
    for (const w of webhooks) {
      const key = JSON.stringify(w);
      const kept = old.get(key);
      if (kept) {
        old.delete(key);
        next.push(kept);
      } else next.push(new WebhookTarget(w, key, this));
    }
    for (const t of old.values()) t.close();
    this.targets = next;
  }

  /** The bus listener: queue the event for each webhook that wants it. Never blocks, never throws. */
  onEvent(ev: HestiaEvent): void {
    for (const t of this.targets) if (t.wants(ev)) t.enqueue(ev);
  }

  /** Resolves when every webhook's queue is empty (tests). */
  async drained(): Promise<void> {
    await Promise.all(this.targets.map((t) => t.drained()));
  }

  close(): void {
    for (const t of this.targets) t.close();
    this.targets = [];
  }

  // --- for the targets ---

  now(): number {
    return this.clock();
  }

  count(webhook: string, result: DeliveryResult): void {
    this.counter?.inc({ webhook, result });
  }

  failed(details: { webhook: string; event: string; attempts: number; error: string; also_failed: number }): void {
    this.opts.log.warn(
      { event_type: 'webhook_failed', ...details },
      `webhook ${details.webhook}: ${details.event} not delivered after ${details.attempts} tries (${details.error})`,
    );
    this.opts.bus.publish('webhook_failed', null, details);
  }
}
