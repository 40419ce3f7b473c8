/**
 * What the rest of the gateway (proxy, API routes, dashboard) may ask of a service.
 * The lifecycle state machine behind it lives in service-runtime.ts; read
 * services/DESIGN.md before changing it.
 */
import type { ServiceConfig } from '../config/schema.ts';
import type { ErrorCode } from '../errors.ts';
import type { ServiceState } from '../lifecycle-states.ts';
import type { OutputReader } from '../observability/output-ring.ts';

export type { ServiceState } from '../lifecycle-states.ts';

/**
 * Permission to send one request to a ready service. Holding a lease counts as "in flight":
 * the service is never idle-stopped while any lease is held. `release()` must be called
 * exactly once when the exchange ends (response finished, client gone, or error); extra calls
 * are ignored.
 */
export interface Lease {
  /** The upstream base URL with `{host}`/`{port}` resolved, e.g. `http://127.0.0.1:9001`. */
  readonly baseUrl: string;
  /** Resolved fallback_url, if configured. */
  readonly fallbackUrl: string | null;
  /** Milliseconds this request waited in the queue (0 on the hot path). */
  readonly waitedMs: number;
  /** True when this request waited for a start (adds `X-Hestia-Cold-Start`). */
  readonly coldStart: boolean;
  /**
   * Record activity (a WebSocket message): resets the idle clock. May be called after
   * `release()`, which is how a WebSocket that does not keep its service alive
   * (`websocket_keeps_alive: false`) still counts its messages as activity.
   */
  touch(): void;
  release(): void;
}

export interface AcquireOptions {
  /** Client gone: leave the queue (the start itself is not cancelled). */
  signal?: AbortSignal;
}

/**
 * Why the service is not running as asked: its last start failed (`code` is the error code its
 * waiters got, `attempts` how many attempts the start made), it crashed (`crashed`), or a stop
 * failed (`stop_failed`). Kept until the next successful start.
 */
export interface LastError {
  message: string;
  code: ErrorCode | 'crashed' | 'stop_failed';
  /** ISO time it happened. */
  at: string;
  attempts: number;
}

/** A keep-warm schedule's facts (SPEC: lifecycle policies); times are ISO strings. */
export interface KeepWarmState {
  windows: string[];
  /** The window covering now, or null. */
  active: string | null;
  /** When the active window ends (ISO), or null. */
  activeUntil: string | null;
  /** When the next window starts (ISO), or null. */
  nextStart: string | null;
}

/** A service's lifecycle-policy facts, part of its status (policy-coordinator.ts). */
export interface PolicyStatus {
  preload: boolean;
  keepWarm: KeepWarmState | null;
  dependsOn: string[];
  dependents: string[];
  group: string | null;
  groupMembers: string[];
  stopMode: 'stop' | 'pause';
  /** Why a policy keeps the service up right now, or null. */
  idleHold: string | null;
}

export interface ServiceStatus extends Partial<PolicyStatus> {
  serviceId: string;
  state: ServiceState;
  readiness: 'ready' | 'not_ready';
  machineId: string | null;
  queuePending: number;
  inflight: number;
  lastUsedAt: string | null;
  startedAt: string | null;
  idleTimeoutMs: number;
  /** ms until the idle stop fires, when armed. */
  idleRemainingMs?: number | null;
  /** Null when the last start succeeded (or none failed yet). */
  lastError?: LastError | null;
  /** Cold after a failed start: ms until a request may start it again (SPEC §12), else null. */
  startBackoffRemainingMs?: number | null;
  /** While starting: ms since the start began, else null. */
  startingForMs?: number | null;
  automation?: Record<string, unknown>;
  /** Cold, with its launch paused (`stop_mode: pause`): the next start resumes it. */
  paused?: boolean;
  [extra: string]: unknown;
}

/** A service's state and load now: what a metrics scrape reads of every service. */
export interface ServiceLoad {
  state: ServiceState;
  inflight: number;
  queued: number;
}

export interface ServiceHandle {
  readonly id: string;
  readonly config: ServiceConfig;
  readonly state: ServiceState;
  /** Hot path: when the service is hot and under max_concurrency, a lease now; else null. */
  tryAcquire(): Lease | null;
  /**
   * Wait in the service's FIFO queue until it is ready (starting it if cold) and a
   * concurrency slot is free. Rejects with a HestiaError: HESTIA_QUEUE_FULL (503 +
   * Retry-After), HESTIA_QUEUE_TIMEOUT (504), HESTIA_START_FAILED / HESTIA_NO_CAPACITY (503),
   * HESTIA_START_TIMEOUT (504, the last attempt ran out of start_timeout_ms),
   * HESTIA_SHUTTING_DOWN (503). When `signal` aborts, rejects with the signal's reason.
   */
  acquire(opts?: AcquireOptions): Promise<Lease>;
  status(): ServiceStatus;
  /** The three gauges of status(), without building it (a scrape reads every service's). */
  load(): ServiceLoad;
  /**
   * Begin a start without waiting for it (POST /v1/services/{id}/start, the waiting page).
   * Returns false when the service is already starting or hot (→ 409), true when a start began.
   * `byRequest` (the waiting page): also false during the backoff after a failed start; an
   * explicit start (the API) is never held back by it.
   */
  start(reason: string, opts?: { byRequest?: boolean }): boolean;
  /** Begin a stop. Returns false when already cold or stopping (→ 409). */
  stop(reason: string): boolean;
  /**
   * Extension (lifecycle): for `GET /v1/services/{id}/status`. When the service is cold and has
   * a health_url, probe it once (at most `timeoutMs`, default 1 s); a healthy, already running
   * upstream is adopted as hot. Resolves (never rejects) once `status()` reflects the result.
   * Optional so that test doubles of ServiceHandle need not implement it.
   */
  probe?(timeoutMs?: number): Promise<void>;
  /**
   * The service's own output (SPEC §12: `GET /v1/services/{id}/logs`). Optional so that test
   * doubles need not implement it.
   */
  output?(): OutputReader;
}

export interface ServiceLookup {
  get(id: string): ServiceHandle | undefined;
  ids(): string[];
}
