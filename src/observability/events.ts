/**
 * The lifecycle event stream. Every state transition and notable happening is emitted here
 * exactly once; logs, metrics, the SQLite store and the dashboard are listeners. Emitters
 * never know who listens.
 */
import { EventEmitter } from 'node:events';

/** Event types (SPEC §9). Extend the union rather than inventing strings at call sites. */
export type EventType =
  | 'service_start'
  | 'service_ready'
  | 'service_start_failed'
  | 'service_stop'
  | 'service_stopped'
  | 'idle_shutdown'
  | 'service_crashed'
  | 'service_adopted'
  | 'service_paused'
  | 'state_change'
  | 'queue_rejected'
  | 'queue_timeout'
  | 'proxy_retry'
  | 'proxy_fallback'
  | 'proxy_error'
  | 'auth_denied'
  | 'config_reloaded'
  | 'machine_wake'
  | 'machine_sleep'
  | 'machine_failover'
  | 'agent_unreachable'
  | 'agent_reconnected'
  | 'capacity_eviction'
  | 'webhook_failed';

export interface HestiaEvent {
  /** Milliseconds since the epoch. */
  ts: number;
  type: EventType;
  serviceId: string | null;
  machineId?: string | null;
  details: Record<string, unknown>;
}

/** An event as read back from the store: its row id, and `type` as recorded (any string). */
export interface StoredEvent {
  id: number;
  ts: number;
  serviceId: string | null;
  machineId: string | null;
  type: string;
  details: Record<string, unknown>;
}

export interface EventMap {
  event: [HestiaEvent];
}

export class EventBus extends EventEmitter<EventMap> {
  constructor() {
    super();
    // Listeners: logger, metrics, store, any number of SSE clients.
    this.setMaxListeners(0);
  }

  publish(
    type: EventType,
    serviceId: string | null,
    details: Record<string, unknown> = {},
    machineId?: string | null,
  ): HestiaEvent {
    const ev: HestiaEvent = { ts: Date.now(), type, serviceId, details };
    if (machineId !== undefined) ev.machineId = machineId;
    this.emit('event', ev);
    return ev;
  }
}
