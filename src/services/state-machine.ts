/**
 * The service lifecycle as a pure table: which state changes are legal, for which causes, and
 * which event each one emits. No I/O, no timers: ServiceRuntime (service-runtime.ts) is the only
 * caller, and it routes every change of state through `planTransition` so that an illegal
 * change is a thrown bug rather than a silently corrupt service.
 *
 *   cold ──start──▶ starting ──ready──▶ hot ──stop/idle──▶ stopping ──stopped──▶ cold
 *     ▲                │  │              │                    ▲
 *     └──start_failed──┘  └────cancel────┼────────────────────┘
 *     └──────────────crashed─────────────┘
 *   cold ──adopted──▶ hot   (a running upstream found by a health probe or at boot)
 *   stopping ──paused──▶ cold (stop_mode: pause: "cold" that a start resumes instead of launching)
 */
import type { EventType } from '../observability/events.ts';
import type { ServiceState } from './types.ts';

/** Why a transition happens. Each legal (from, to) pair accepts a fixed set of causes. */
export type TransitionCause =
  /** A request arrived for a service that was not hot. */
  | 'request'
  /** POST /v1/services/{id}/start. */
  | 'api'
  /** A lifecycle policy: preload, a keep-warm window, a group member's start (policy-coordinator.ts). */
  | 'policy'
  /** A service it depends on is stopping or crashed: dependents stop first. */
  | 'dependency'
  /** stop_mode: pause — the idle stop froze it instead of stopping it. */
  | 'paused'
  /** Readiness reached. */
  | 'ready'
  /** A health probe (status endpoint, boot) found the upstream already running. */
  | 'adopted'
  /** Every attempt of a start failed. */
  | 'start_failed'
  /** No request for idle_timeout_ms. */
  | 'idle'
  /** POST /v1/services/{id}/stop. */
  | 'api_stop'
  /** Gateway shutdown. */
  | 'shutdown'
  /** Stopped to make room for another service on its machine (capacity, SPEC §6). */
  | 'evicted'
  /** The launcher's stop finished. */
  | 'stopped'
  /** The launched thing ended on its own while hot. */
  | 'crashed';

interface Edge {
  causes: readonly TransitionCause[];
  /** The event this transition emits; `idle` overrides it (see eventFor). */
  event: EventType;
}

const key = (from: ServiceState, to: ServiceState) => `${from}>${to}` as const;

/** The whole lifecycle. Anything not listed here is illegal. */
export const TRANSITIONS: ReadonlyMap<string, Edge> = new Map<string, Edge>([
  [key('cold', 'starting'), { causes: ['request', 'api', 'policy'], event: 'service_start' }],
  [key('cold', 'hot'), { causes: ['adopted'], event: 'service_adopted' }],
  [key('starting', 'hot'), { causes: ['ready'], event: 'service_ready' }],
  [key('starting', 'cold'), { causes: ['start_failed'], event: 'service_start_failed' }],
  // A stop or shutdown while starting abandons the start and cleans up what was launched.
  [key('starting', 'stopping'), { causes: ['api_stop', 'shutdown', 'dependency'], event: 'service_stop' }],
  [
    key('hot', 'stopping'),
    { causes: ['idle', 'api_stop', 'shutdown', 'evicted', 'dependency'], event: 'service_stop' },
  ],
  [key('hot', 'cold'), { causes: ['crashed'], event: 'service_crashed' }],
  [key('stopping', 'cold'), { causes: ['stopped', 'paused'], event: 'service_stopped' }],
]);

export class IllegalTransitionError extends Error {
  constructor(
    readonly from: ServiceState,
    readonly to: ServiceState,
    readonly transitionCause: TransitionCause,
  ) {
    super(`illegal service transition ${from} -> ${to} (cause ${transitionCause})`);
    this.name = 'IllegalTransitionError';
  }
}

export function canTransition(from: ServiceState, to: ServiceState, cause: TransitionCause): boolean {
  return TRANSITIONS.get(key(from, to))?.causes.includes(cause) ?? false;
}

/**
 * The event a legal transition emits, or an IllegalTransitionError. An idle stop is reported
 * as `idle_shutdown` (SPEC §9) rather than the generic `service_stop`; a stop that ended in a
 * pause as `service_paused` rather than `service_stopped`.
 */
export function planTransition(from: ServiceState, to: ServiceState, cause: TransitionCause): EventType {
  const edge = TRANSITIONS.get(key(from, to));
  if (!edge?.causes.includes(cause)) throw new IllegalTransitionError(from, to, cause);
  if (cause === 'idle') return 'idle_shutdown';
  return cause === 'paused' ? 'service_paused' : edge.event;
}
