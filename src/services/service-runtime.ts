/**
 * One service's lifecycle: its state, wait queue, idle clock, in-flight count and launcher
 * handle, all owned by this object. Read services/DESIGN.md before changing it. The start's
 * attempts (launch-attempts.ts), the idle clock (idle-clock.ts), `queue_rejected` throttling
 * (rejection-throttle.ts) and the lastUsedAt write-behind (write-behind.ts) are helpers that
 * report back here; none of them changes state.
 *
 * Rules this class keeps:
 * - Only `transition()` assigns `state`; it validates against the pure table
 *   (state-machine.ts), emits exactly one event and persists the state.
 * - Every decision (start? join? grant? stop?) is made synchronously on the current state. Async
 *   work (a start attempt, a stop, a busy check, a probe) carries the `epoch` or token it began
 *   with and, when it resumes, re-checks them before acting: it never acts on a state it read
 *   before an `await`.
 * - One start at a time: `beginStart` only runs from `cold`, and moves to `starting` before
 *   returning, so any number of concurrent `acquire()` calls cause exactly one start.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServiceConfig } from '../config/schema.ts';
import { HestiaError } from '../errors.ts';
import {
  type ExitInfo,
  expandTemplate,
  type LaunchContext,
  type Launcher,
  type LaunchHandle,
  type PlacedMachine,
  type TemplateVars,
} from '../launchers/types.ts';
import type { EventBus, EventType } from '../observability/events.ts';
import type { Logger } from '../observability/logger.ts';
import { type OutputReader, OutputRing } from '../observability/output-ring.ts';
import { probeOnce } from '../remote/http-probe.ts';
import type { ServiceStateRow } from '../store/store.ts';
import { type BusyResult, checkBusy } from './busy-check.ts';
import {
  type StartFailure,
  shuttingDownError,
  startBackoffError,
  startCancelledError,
  startFailedError,
  startRetryAfterMs,
} from './errors.ts';
import { IdleClock } from './idle-clock.ts';
import { type LaunchHost, runLaunchAttempts, type Started, stopQuietly } from './launch-attempts.ts';
import { type Placement, type PlacementClaim, templateVars } from './placement.ts';
import type { PolicyHooks, PolicyMember } from './policy-hooks.ts';
import { waitUntilReady } from './probe.ts';
import { WaitQueue } from './queue.ts';
import { RejectionThrottle } from './rejection-throttle.ts';
import { planTransition, type TransitionCause } from './state-machine.ts';
import type {
  AcquireOptions,
  LastError,
  Lease,
  ServiceHandle,
  ServiceLoad,
  ServiceState,
  ServiceStatus,
} from './types.ts';
import { WriteBehind } from './write-behind.ts';

/** What the runtime writes to durable storage (the SQLite store, or nothing in unit tests). */
export interface StateSink {
  save(row: Omit<ServiceStateRow, 'updatedAt'>): void;
  touch(serviceId: string, lastUsedAt: number): void;
}

/**
 * A recorded state from before a gateway restart (store row). `launcherType` is the launcher
 * type that wrote `persist`; another type's facts are never handed to adopt.
 */
export type RecordedState = Omit<ServiceStateRow, 'serviceId' | 'updatedAt'>;

export interface RuntimeDeps {
  bus: EventBus;
  log: Logger;
  launcher: Launcher;
  placement: Placement;
  sink?: StateSink | undefined;
  /** Hides the config's secrets in the service's output (config/mask.ts `textMasker`). */
  mask?: ((text: string) => string) | undefined;
  /** Cross-service policies (policy-coordinator.ts): dependencies, groups, keep-warm holds. */
  policy?: PolicyHooks | undefined;
}

/** A launch frozen by an idle stop with `stop_mode: pause`; the next start resumes it. */
interface PausedLaunch {
  handle: LaunchHandle;
  launcher: Launcher;
  machine: PlacedMachine;
  vars: TemplateVars;
}

/** Bound on the status endpoint's probe of a cold service (SPEC §2). */
export const STATUS_PROBE_TIMEOUT_MS = 1_000;
/** lastUsedAt is written behind, at most this often, so the hot path never waits on SQLite. */
const TOUCH_FLUSH_MS = 2_000;
/** At most one `queue_rejected` event per service per this interval. */
const REJECTED_EVENT_INTERVAL_MS = 1_000;
/** The start backoff doubles after each further failure up to this (or start_backoff_ms if larger). */
export const MAX_START_BACKOFF_MS = 60_000;
/** Retry-After for a full queue when nothing better is known. */
const DEFAULT_RETRY_AFTER_S = 5;
/**
 * Most waiters granted in one turn of the event loop (see `pump`). Exported for the tests,
 * which check order and in-flight counts across batches, never timing.
 */
export const GRANT_BATCH = 16;
/**
 * Waiters granted in the first turn after a start: one, alone. Each granted waiter continues in
 * a microtask, and a new socket's connect (to an IP address) is issued from a nextTick queued
 * there, which runs only once the microtask queue is empty: with a batch of 16, every request
 * was dispatched before the first one's connect was sent. With one, its connection and its
 * request go out while the next batch waits for the following poll phase (see `pump`).
 */
export const FIRST_GRANT_AFTER_START = 1;

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A lease is made per proxied request: a class with shared methods rather than an object
 * literal with two closures (one allocation instead of three on the hot path).
 */
class RuntimeLease implements Lease {
  private released = false;

  constructor(
    private readonly runtime: ServiceRuntime,
    readonly baseUrl: string,
    readonly fallbackUrl: string | null,
    readonly waitedMs: number,
    readonly coldStart: boolean,
  ) {}

  touch(): void {
    this.runtime.leaseTouched();
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.runtime.leaseReleased();
  }
}

export class ServiceRuntime implements ServiceHandle, PolicyMember {
  private _state: ServiceState = 'cold';
  private readonly queue: WaitQueue<Lease>;
  private readonly log: Logger;
  private inflight = 0;

  /** Bumped by every start; async work from an older epoch is stale and must not act. */
  private epoch = 0;
  private startAbort: AbortController | null = null;
  private startTask: Promise<void> | null = null;
  private startBeganAt: number | null = null;
  /** The same moment on the monotonic clock (performance.now()), for the start's phases. */
  private startBeganPerf = 0;
  /** Set by POST start while stopping: start again once the stop is done. */
  private startAfterStop = false;
  private stopTask: Promise<void> | null = null;

  private handle: LaunchHandle | null = null;
  /**
   * While cold after an idle stop with `stop_mode: pause`: the frozen launch, which the next
   * start resumes instead of launching anew. Status says `paused: true` (a kind of cold).
   */
  private paused: PausedLaunch | null = null;
  /** The launcher for new starts (replaced by a config reload). */
  private launcher: Launcher;
  /** The launcher that made `handle`. */
  private handleLauncher: Launcher | null = null;
  private machine: PlacedMachine | null = null;
  /** What placement holds for us on `machine` (capacity; "in use" for sleep) until we are cold. */
  private claim: PlacementClaim | null = null;
  private vars: TemplateVars | null = null;
  private urlCache: { vars: TemplateVars; base: string; fallback: string | null } | null = null;

  /** The idle stop's deadline, timer and idle token (it calls back; it changes no state). */
  private readonly idle: IdleClock;
  /** What a start's attempts (launch-attempts.ts) may tell this runtime; made once. */
  private readonly launchHost: LaunchHost;

  private startedAt: number | null = null;
  private lastUsedAt: number | null = null;
  private lastStartMs: number | null = null;
  /** Why the last start failed, the service crashed or a stop failed; null after a successful start. */
  private lastError: LastError | null = null;
  /** The current start backoff (0 = none) and when it ends: request-triggered starts wait for it. */
  private backoffMs = 0;
  private backoffUntil = 0;
  /** The latest failed readiness probe of the start in progress (explains a 504). */
  private lastProbeDetail: string | null = null;
  /** `lastUsedAt` to the sink, written behind (null without a sink). */
  private readonly touchWriter: WriteBehind | null;
  /** `queue_rejected`, one event per service per REJECTED_EVENT_INTERVAL_MS at most. */
  private readonly rejections: RejectionThrottle;

  /** The service's own output, across its launches (SPEC §12); fed by the launcher. */
  private readonly outputRing: OutputRing;

  /** A pump continues in the next turn (after a full batch); null when none is pending. */
  private pumpLater: NodeJS.Immediate | null = null;

  private shuttingDown = false;
  /**
   * Capacity asked this service to make room once its requests end (`evictWhenDrained`): while
   * set, it admits nothing new, serves at most `quota` more queued requests (those queued when
   * the swap was asked; for a service still starting, those queued when it becomes ready; null
   * until then), and stops (`hot → stopping`, cause `evicted`) when nothing is in flight. A flag,
   * not a state: the state stays `hot` until that stop. Cleared on any change of state.
   */
  private swapOut: { details: Record<string, unknown>; quota: number | null } | null = null;
  private drainWaiters: Array<() => void> = [];
  /** Clean-ups running in the background (a crashed child's group); awaited at shutdown. */
  private readonly background = new Set<Promise<void>>();

  constructor(
    readonly id: string,
    private cfg: ServiceConfig,
    private readonly deps: RuntimeDeps,
  ) {
    this.log = deps.log.child({ service_id: id });
    this.launcher = deps.launcher;
    this.outputRing = new OutputRing({
      maxLines: cfg.output_lines,
      maxBytes: cfg.output_bytes,
      mask: deps.mask,
      onLine: (l) => this.log.info({ event_type: 'service_output', stream: l.stream }, l.text),
    });
    this.queue = new WaitQueue<Lease>({
      serviceId: id,
      capacity: cfg.queue_size,
      timeoutMs: cfg.request_timeout_seconds * 1000,
      retryAfterSeconds: () => this.retryAfterSeconds(),
      onTimeout: (info) => this.publish('queue_timeout', { waitedMs: info.waitedMs, state: this._state }),
      describe: () => this.describeWait(),
    });
    this.idle = new IdleClock({
      idleTimeoutMs: () => this.cfg.idle_timeout_ms,
      idleAllowed: () => this._state === 'hot' && this.inflight === 0 && this.queue.length === 0 && !this.shuttingDown,
      held: () => this.deps.policy?.holdReason(this.id) ?? null,
      checkBusy: () => this.startBusyCheck(),
      postponed: (detail) =>
        this.log.info(
          { event_type: 'idle_postponed', detail },
          `service '${this.id}' is kept up (${detail}); idle stop postponed`,
        ),
      idle: (details) => void this.beginStop('idle', details),
    });
    this.launchHost = {
      id,
      log: this.log,
      bus: deps.bus,
      placement: deps.placement,
      config: () => this.cfg,
      launcher: () => this.launcher,
      varsFor: (machine) => this.varsFor(machine),
      launchContext: (machine, vars, signal) => this.launchContext(machine, vars, signal),
      onMachine: (machine) => {
        this.machine = machine;
      },
      onClaim: (claim) => {
        this.claim = claim;
      },
      releaseClaim: () => this.releaseClaim(),
      onProbe: (detail) => {
        this.lastProbeDetail = detail;
      },
      started: (started, attempts) => this.onStarted(started, attempts),
      failed: (failures) => this.onStartFailed(failures),
    };
    const sink = deps.sink;
    this.touchWriter = sink
      ? new WriteBehind(() => {
          if (this.lastUsedAt !== null) sink.touch(this.id, this.lastUsedAt);
        }, TOUCH_FLUSH_MS)
      : null;
    this.rejections = new RejectionThrottle(
      (count) =>
        this.publish('queue_rejected', {
          reason: 'queue_full',
          count,
          queuePending: this.queue.length,
          queueSize: this.cfg.queue_size,
          state: this._state,
        }),
      REJECTED_EVENT_INTERVAL_MS,
    );
  }

  get config(): ServiceConfig {
    return this.cfg;
  }

  get state(): ServiceState {
    return this._state;
  }

  // ---- the ServiceHandle surface -------------------------------------------------------

  tryAcquire(): Lease | null {
    // FIFO: nobody overtakes a queued request, even when a slot is free for an instant.
    if (this.shuttingDown || this._state !== 'hot' || this.queue.length > 0 || !this.hasSlot() || this.swapOut !== null)
      return null;
    return this.makeLease(0, false);
  }

  acquire(opts: AcquireOptions = {}): Promise<Lease> {
    if (this.shuttingDown) return Promise.reject(shuttingDownError(this.id));
    const lease = this.tryAcquire();
    if (lease) return Promise.resolve(lease);
    if (opts.signal?.aborted) return Promise.reject(opts.signal.reason);
    if (this.queue.isFull()) {
      this.rejections.note();
      return Promise.reject(this.queue.fullError());
    }
    // Cold after a failed start: no new start until the backoff is over (SPEC §12).
    const backoff = this._state === 'cold' ? this.backoffRemainingMs(Date.now()) : 0;
    if (backoff > 0) return Promise.reject(startBackoffError(this.id, this.lastError, backoff));
    const waiting = this.queue.enqueue({ signal: opts.signal, coldStart: this._state !== 'hot' });
    // cold: begin the one start. starting: the waiter joins it. stopping: the start follows
    // the stop (finishStop). hot: the waiter waits for a concurrency slot (pump on release).
    if (this._state === 'cold') this.beginStart('request', 'request');
    return waiting;
  }

  start(reason: string, opts: { byRequest?: boolean } = {}): boolean {
    if (this.shuttingDown) return false;
    if (opts.byRequest && this.backoffRemainingMs(Date.now()) > 0) return false;
    if (this._state === 'cold') {
      this.beginStart('api', reason);
      return true;
    }
    if (this._state === 'stopping' && !this.startAfterStop) {
      this.startAfterStop = true;
      return true;
    }
    return false;
  }

  stop(reason: string): boolean {
    // Cold but paused: the frozen launch is really stopped (it holds memory until then).
    if (this._state === 'cold' && this.paused !== null) {
      void this.discardPaused(`stopped by request: ${reason}`);
      return true;
    }
    if (this._state === 'cold' || this._state === 'stopping') return false;
    void this.beginStop('api_stop', { reason });
    return true;
  }

  // ---- lifecycle policies (policy-coordinator.ts calls these; see policy-hooks.ts) ---------

  policyStart(reason: string): boolean {
    if (this.shuttingDown) return false;
    if (this._state === 'cold') {
      this.beginStart('policy', reason);
      return true;
    }
    return false;
  }

  stopForDependency(dependency: string, why: string): Promise<void> {
    if (this._state === 'hot' || this._state === 'starting')
      return this.beginStop('dependency', { dependency, reason: why });
    return this.stopTask ?? Promise.resolve();
  }

  recheckIdle(): void {
    if (this._state === 'hot' && this.inflight === 0) this.idle.arm(this.lastUsedAt ?? Date.now());
  }

  idleExpired(now: number): boolean {
    const ms = this.cfg.idle_timeout_ms;
    if (this._state !== 'hot' || this.inflight > 0 || this.queue.length > 0 || ms <= 0) return false;
    return now - (this.lastUsedAt ?? this.startedAt ?? now) >= ms;
  }

  private heldByPolicy(): boolean {
    return (this.deps.policy?.holdReason(this.id) ?? null) !== null;
  }

  /** Really stop a paused launch (explicit stop, shutdown of a local child); it stays cold. */
  private discardPaused(why: string): Promise<void> {
    const p = this.paused;
    if (!p) return Promise.resolve();
    this.paused = null;
    this.saveState();
    this.log.info(
      { event_type: 'service_paused_stopped', reason: why },
      `paused service '${this.id}' stopped (${why})`,
    );
    const done = stopQuietly(p.launcher, p.handle, this.launchContext(p.machine, p.vars, new AbortController().signal));
    this.track(done);
    return done;
  }

  // ---- capacity (src/machines/machine-placement.ts) --------------------------------------

  /**
   * Its last use when it could be stopped to make room for another service right now: hot,
   * nothing in flight, nothing queued, not shutting down. Null otherwise.
   */
  evictionCandidate(): { lastUsedAt: number } | null {
    if (this._state !== 'hot' || this.inflight > 0 || this.queue.length > 0 || this.shuttingDown || this.stopTask)
      return null;
    if (this.heldByPolicy()) return null;
    return { lastUsedAt: this.lastUsedAt ?? this.startedAt ?? 0 };
  }

  /**
   * Its last use when it could be stopped to make room once its requests end (hot or starting,
   * not stopping, not shutting down, not already swapping out); null otherwise.
   */
  swapCandidate(): { lastUsedAt: number } | null {
    if ((this._state !== 'hot' && this._state !== 'starting') || this.shuttingDown || this.stopTask || this.swapOut)
      return null;
    if (this.heldByPolicy()) return null;
    return { lastUsedAt: this.lastUsedAt ?? this.startedAt ?? Date.now() };
  }

  /**
   * Make room for another service (capacity, SPEC §6 "swapping"): admit nothing new, finish what
   * is in flight and the requests queued now (the fairness rule, docs/models.md), then stop with
   * cause `evicted`. A service still starting first becomes ready and serves the requests that
   * waited for it. Requests arriving meanwhile wait in its queue, behind the swap: when it is
   * cold they start it again. False when it is no swap candidate.
   */
  evictWhenDrained(details: Record<string, unknown>): boolean {
    if (this.swapCandidate() === null) return false;
    this.swapOut = { details, quota: this._state === 'hot' ? this.queue.length : null };
    this.idle.disarm();
    this.pump();
    this.maybeSwapOut();
    return true;
  }

  /** The swap was given up (the other start's wait ran out or it was abandoned): back to normal. */
  cancelEviction(): void {
    if (this.swapOut === null) return;
    this.swapOut = null;
    this.pump();
    if (this.inflight === 0) this.idle.arm();
  }

  /** Swapping out and nothing left to serve: stop now. */
  private maybeSwapOut(): void {
    const swap = this.swapOut;
    if (swap === null || this._state !== 'hot' || this.inflight > 0) return;
    if (swap.quota !== null && swap.quota > 0 && this.queue.length > 0) return;
    this.swapOut = null;
    void this.beginStop('evicted', { ...swap.details, waitedForInFlight: true });
  }

  /** Its busy_check answer (null without one). Never rejects. */
  async busyCheck(): Promise<BusyResult | null> {
    return this.startBusyCheck();
  }

  /**
   * Stop to make room on its machine (`hot → stopping`, cause `evicted`), decided now on the
   * current state: false (and nothing happens) unless it is still an eviction candidate.
   */
  evict(details: Record<string, unknown>): boolean {
    if (this.evictionCandidate() === null) return false;
    void this.beginStop('evicted', details);
    return true;
  }

  output(): OutputReader {
    return this.outputRing;
  }

  load(): ServiceLoad {
    return { state: this._state, inflight: this.inflight, queued: this.queue.length };
  }

  status(): ServiceStatus {
    const now = Date.now();
    const automation = (this.handleLauncher ?? this.launcher).statusInfo?.();
    const s: ServiceStatus = {
      serviceId: this.id,
      state: this._state,
      readiness: this._state === 'hot' ? 'ready' : 'not_ready',
      machineId: this.machineId(),
      queuePending: this.queue.length,
      inflight: this.inflight,
      lastUsedAt: iso(this.lastUsedAt),
      startedAt: iso(this.startedAt),
      idleTimeoutMs: this.cfg.idle_timeout_ms,
      idleRemainingMs: this.idle.remainingMs(now),
      launcher: this.launcher.type,
      lastError: this.lastError,
      startBackoffRemainingMs: this._state === 'cold' ? this.backoffRemainingMs(now) || null : null,
      startingForMs: this._state === 'starting' && this.startBeganAt !== null ? now - this.startBeganAt : null,
      paused: this.paused !== null,
      ...(this.deps.policy?.status(this.id) ?? {}),
    };
    // The original answered `automation: {enabled: false}` for services without automation.
    s.automation = automation ?? { enabled: false };
    return s;
  }

  /**
   * The status endpoint's check of a cold service (SPEC §2): probe its health_url once, at
   * most `timeoutMs`; a healthy upstream that is already running is adopted as hot. Does
   * nothing unless the service is cold and has a health_url. A local child's service (process
   * launcher) is not adopted this way unless `adopt_running`: a cold one has no child, so what
   * answers is a server Hestia did not start (launch-attempts.ts refuses to start over it).
   */
  async probe(timeoutMs = STATUS_PROBE_TIMEOUT_MS): Promise<void> {
    // A paused service is frozen: it would not answer, and it is not a stranger to adopt.
    if (this._state !== 'cold' || !this.cfg.health_url || this.shuttingDown || this.paused) return;
    if (this.launcher.stopOnShutdown === true && !this.cfg.adopt_running) return;
    const machine = this.firstMachine();
    const vars = this.varsFor(machine);
    const epoch = this.epoch;
    const r = await probeOnce(expandTemplate(this.cfg.health_url, vars), timeoutMs);
    // Re-decide on the state as it is now: a start may have begun while we probed.
    if (!r.ok || this._state !== 'cold' || this.epoch !== epoch || this.shuttingDown) return;
    this.becomeAdopted({ handle: {}, launcher: this.launcher, machine, vars }, Date.now(), null, 'status_probe');
  }

  // ---- config reload -------------------------------------------------------------------

  /**
   * Apply a reloaded config (SPEC §3) without dropping in-flight or queued requests. Limits,
   * timeouts and the idle period apply at once (the idle clock keeps its last use); a new
   * `launcher` (when given) is used from the next start on, while a running instance keeps the
   * launcher that made it (which also stops it). base_url/health_url changes apply to the next
   * start: a running instance keeps the URLs it was started with.
   */
  reconfigure(cfg: ServiceConfig, launcher?: Launcher): void {
    this.cfg = cfg;
    if (launcher) this.launcher = launcher;
    this.queue.setLimits(cfg.queue_size, cfg.request_timeout_seconds * 1000);
    this.outputRing.resize({ maxLines: cfg.output_lines, maxBytes: cfg.output_bytes });
    // A larger max_concurrency may free slots for queued requests.
    this.pump();
    if (this._state === 'hot' && this.inflight === 0) this.idle.arm(this.lastUsedAt ?? Date.now());
  }

  // ---- boot ----------------------------------------------------------------------------

  /**
   * Re-adopt what an earlier gateway left running (SPEC §5). A service recorded hot is adopted
   * as hot when its health check passes (or, without a health_url, when the launcher re-adopts
   * its process); its idle clock continues from the recorded lastUsedAt. A launched thing that
   * is still ours but not adoptable (unhealthy, or recorded mid-start/stop) is stopped.
   * Anything else: cold.
   */
  async restore(rec: RecordedState | undefined): Promise<void> {
    if (rec?.state === 'cold' && rec.persist?.paused === true && this._state === 'cold') {
      await this.restorePaused(rec);
      return;
    }
    if (!rec || rec.state === 'cold' || this._state !== 'cold') {
      this.saveState();
      return;
    }
    const machine = this.deps.placement.candidates(this.id).find((m) => m.id === rec.machineId) ?? this.firstMachine();
    let vars = this.varsFor(machine);
    const ctx = this.launchContext(machine, vars, new AbortController().signal);
    let handle: LaunchHandle | null = null;
    const launcher = this.launcher;
    if (rec.persist && launcher.adopt && rec.launcherType === launcher.type) {
      handle = await launcher.adopt(rec.persist, ctx).catch((err: unknown) => {
        this.log.warn({ event_type: 'service_adopt_failed', err: message(err) }, 'could not re-adopt');
        return null;
      });
    }
    if (handle?.host) vars = { ...vars, host: handle.host };
    let healthy: boolean;
    let detail: string;
    if (this.cfg.health_url) {
      const r = await probeOnce(expandTemplate(this.cfg.health_url, vars), STATUS_PROBE_TIMEOUT_MS);
      healthy = r.ok;
      detail = r.detail;
    } else {
      healthy = handle !== null;
      detail = handle ? 'process re-adopted' : 'no health_url and nothing re-adopted';
    }
    if (rec.state === 'hot' && healthy && this._state === 'cold') {
      this.becomeAdopted(
        { handle: handle ?? {}, launcher, machine, vars },
        rec.lastUsedAt ?? Date.now(),
        rec.startedAt,
        'boot',
      );
      return;
    }
    this.log.info(
      { event_type: 'service_not_adopted', recorded_state: rec.state, detail },
      `service '${this.id}' recorded ${rec.state} is not adopted (${detail}); it is cold`,
    );
    if (handle) {
      await launcher.stop(handle, ctx).catch((err: unknown) => {
        this.log.warn({ event_type: 'service_cleanup_failed', err: message(err) }, 'could not stop a stale launch');
      });
    }
    this.saveState();
  }

  /**
   * A launch recorded paused by an earlier gateway: re-adopted (same checks as for a hot one).
   * A local child (process launcher) lost its output pipe with that gateway and is stopped; any
   * other (a container) is kept paused, and the next start resumes it.
   */
  private async restorePaused(rec: RecordedState): Promise<void> {
    const launcher = this.launcher;
    const machine = this.deps.placement.candidates(this.id).find((m) => m.id === rec.machineId) ?? this.firstMachine();
    const vars = this.varsFor(machine);
    const ctx = this.launchContext(machine, vars, new AbortController().signal);
    const { paused: _paused, ...persist } = rec.persist ?? {};
    const handle =
      launcher.adopt && rec.launcherType === launcher.type
        ? await launcher.adopt(persist, ctx).catch(() => null)
        : null;
    if (handle && this._state === 'cold' && this.paused === null) {
      this.paused = { handle, launcher, machine, vars };
      if (launcher.stopOnShutdown) {
        // Continued first, so that it acts on the stop signal at once.
        await launcher.resume?.(handle, ctx).catch(() => {});
        await this.discardPaused('re-adopted paused child of an earlier gateway');
      } else {
        this.log.info({ event_type: 'service_paused_adopted' }, `service '${this.id}' is still paused; kept paused`);
        this.watchExit(handle, this.epoch);
      }
    }
    this.saveState();
  }

  // ---- shutdown (driven by the registry) -----------------------------------------------

  /**
   * Refuse new requests, fail every waiter with `error` (503 HESTIA_SHUTTING_DOWN by default),
   * abandon a start in progress. Also used when a reload removes the service.
   */
  beginShutdown(error: HestiaError = shuttingDownError(this.id)): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.startAfterStop = false;
    this.idle.disarm();
    this.queue.rejectAll(error);
    if (this._state === 'starting') void this.beginStop('shutdown', {});
  }

  /** Resolves once no lease is held, or at `deadline` (epoch ms), whichever is first. */
  async drain(deadline: number): Promise<void> {
    if (this.inflight === 0) return;
    const remaining = deadline - Date.now();
    if (remaining <= 0) return;
    const ac = new AbortController();
    await Promise.race([
      new Promise<void>((resolve) => this.drainWaiters.push(resolve)),
      sleep(remaining, undefined, { signal: ac.signal }).catch(() => {}),
    ]);
    ac.abort();
  }

  /**
   * Stop what must not outlive the gateway (launchers with `stopOnShutdown`, i.e. local
   * children), wait for stops in progress, and write the final state. Other launchers' services
   * stay up and are recorded hot, for re-adoption by the next gateway.
   */
  async finishShutdown(): Promise<void> {
    if (this.startTask) await this.startTask;
    if (this.stopTask) await this.stopTask;
    if (this._state === 'hot' && (this.handleLauncher ?? this.launcher).stopOnShutdown) {
      await this.beginStop('shutdown', {});
    }
    // A paused local child dies with the gateway like a running one; a paused container stays
    // paused (recorded) and is resumed by the next gateway's first start.
    if (this._state === 'cold' && this.paused?.launcher.stopOnShutdown) await this.discardPaused('gateway shutdown');
    await Promise.all(this.background);
    this.idle.close();
    if (this.pumpLater) clearImmediate(this.pumpLater);
    this.pumpLater = null;
    this.rejections.close();
    this.touchWriter?.cancel();
    this.saveState();
  }

  // ---- state changes -------------------------------------------------------------------

  /** The only writer of `_state`. Throws IllegalTransitionError on a bug. */
  private transition(to: ServiceState, cause: TransitionCause, details: Record<string, unknown> = {}): void {
    const from = this._state;
    const type = planTransition(from, to, cause);
    this._state = to;
    if (to !== 'hot' && to !== 'starting') this.swapOut = null;
    this.publish(type, { from, to, cause, ...details });
    this.saveState();
    this.deps.policy?.transitioned(this.id, from, to, cause);
  }

  private beginStart(cause: 'request' | 'api' | 'policy', reason: string): void {
    this.idle.disarm();
    this.lastProbeDetail = null;
    const epoch = ++this.epoch;
    const ac = new AbortController();
    this.startAbort = ac;
    this.startBeganAt = Date.now();
    this.startBeganPerf = performance.now();
    this.machine = this.firstMachine();
    this.transition('starting', cause, {
      reason,
      queuePending: this.queue.length,
      ...(this.paused ? { resume: true } : {}),
    });
    this.startTask = this.runStart(epoch, ac.signal).finally(() => {
      if (this.epoch === epoch) {
        this.startTask = null;
        this.startAbort = null;
      }
    });
  }

  /**
   * All attempts of one start (launch-attempts.ts): it reports back through `launchHost`, and
   * only while this start is current (same epoch, not aborted). Never rejects.
   */
  private async runStart(epoch: number, signal: AbortSignal): Promise<void> {
    const stale = () => this.epoch !== epoch || signal.aborted;
    try {
      const dependencies = this.deps.policy?.beforeStart(this.id, signal) ?? null;
      if (dependencies) {
        try {
          await dependencies;
        } catch (err) {
          if (stale()) return;
          this.onStartFailed([
            { machine: this.machineId(), attempt: 0, reason: message(err), timedOut: false, stage: 'dependency' },
          ]);
          return;
        }
        if (stale()) return;
      }
      if (this.paused !== null && (await this.resumePaused(signal, stale))) return;
      await runLaunchAttempts(this.launchHost, signal, stale);
    } catch (err) {
      // A bug (illegal transition). Fail the waiters rather than leaving them hanging.
      this.log.error({ event_type: 'service_internal_error', err }, 'lifecycle bug during start');
      this.queue.rejectAll(new HestiaError('HESTIA_INTERNAL', `internal error while starting '${this.id}'`));
    }
  }

  /**
   * Start by resuming the paused launch (stop_mode: pause): the launcher's `resume`, then the
   * readiness check (health_url; no warmup: it was ready when paused), bounded by
   * start_timeout_ms and failing at once if it exits. True when this start is done (resumed, or
   * stale: then what was resumed is stopped); false when resuming failed (it is stopped, and
   * the caller launches afresh).
   */
  private async resumePaused(signal: AbortSignal, stale: () => boolean): Promise<boolean> {
    const p = this.paused;
    if (!p) return false;
    this.paused = null;
    const timeoutMs = this.cfg.start_timeout_ms;
    const bound = timeoutMs > 0 ? AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]) : signal;
    const ctx = this.launchContext(p.machine, p.vars, bound);
    try {
      if (!p.launcher.resume) throw new Error(`the ${p.launcher.type} launcher cannot resume`);
      await p.launcher.resume(p.handle, ctx);
      const exited = p.handle.exited?.then((info) => {
        throw new Error(`it ${info.reason} while paused`);
      });
      await Promise.race([
        waitUntilReady({
          healthUrl: this.cfg.health_url ? expandTemplate(this.cfg.health_url, p.vars) : null,
          intervalMs: this.cfg.health_interval_ms,
          warmupMs: 0,
          signal: bound,
        }),
        ...(exited ? [exited] : []),
      ]);
    } catch (err) {
      const clean = this.launchContext(p.machine, p.vars, new AbortController().signal);
      await stopQuietly(p.launcher, p.handle, clean);
      if (stale()) return true;
      this.log.warn(
        { event_type: 'service_resume_failed', err: message(err) },
        `resuming paused service '${this.id}' failed (${message(err)}); starting it afresh`,
      );
      return false;
    }
    if (stale()) {
      await stopQuietly(p.launcher, p.handle, this.launchContext(p.machine, p.vars, new AbortController().signal));
      return true;
    }
    // Its room on the machine is taken back without checks, like a re-adoption.
    this.releaseClaim();
    this.claim = this.deps.placement.adopt?.(this.id, p.machine) ?? null;
    this.onStarted({ handle: p.handle, launcher: p.launcher, machine: p.machine, vars: p.vars }, 1, { resumed: true });
    return true;
  }

  private onStarted(started: Started, attempts: number, extra: Record<string, unknown> = {}): void {
    const now = Date.now();
    this.handle = started.handle;
    this.handleLauncher = started.launcher;
    this.machine = started.machine;
    this.vars = started.vars;
    this.startedAt = now;
    this.lastUsedAt = now;
    this.lastError = null;
    this.backoffMs = 0;
    this.backoffUntil = 0;
    this.lastStartMs = this.startBeganAt === null ? null : now - this.startBeganAt;
    this.transition('hot', 'ready', {
      coldStartMs: this.lastStartMs,
      attempts,
      ...startPhases(this.startBeganPerf, started.launchedAt),
      ...extra,
      ...(started.handle.info ?? {}),
    });
    this.watchExit(started.handle, this.epoch);
    // Asked to swap out while starting: it serves the requests that waited for this start first.
    if (this.swapOut !== null && this.swapOut.quota === null) this.swapOut.quota = this.queue.length;
    this.pump(FIRST_GRANT_AFTER_START);
    this.maybeSwapOut();
    this.idle.arm();
  }

  private onStartFailed(failures: StartFailure[]): void {
    // No room on any machine is not the service's fault: capacity may free up any moment, so
    // that failure sets no backoff. Any other failure starts or doubles it (SPEC §12).
    const noCapacity = failures.length > 0 && failures.every((f) => f.stage === 'no_capacity');
    // Nor is a dependency's failure (the dependency has its own backoff).
    const dependency = failures.length > 0 && failures.every((f) => f.stage === 'dependency');
    const base = this.cfg.start_backoff_ms;
    if (base > 0 && !noCapacity && !dependency) {
      this.backoffMs = this.backoffMs === 0 ? base : Math.min(this.backoffMs * 2, Math.max(base, MAX_START_BACKOFF_MS));
      this.backoffUntil = Date.now() + this.backoffMs;
    }
    const retryAfterMs = startRetryAfterMs(this.cfg.retry_delay_ms);
    const err = startFailedError(this.id, failures, noCapacity ? retryAfterMs : Math.max(this.backoffMs, retryAfterMs));
    this.lastError = { message: err.message, code: err.code, at: new Date().toISOString(), attempts: failures.length };
    this.releaseClaim();
    this.handle = null;
    this.handleLauncher = null;
    this.vars = null;
    this.transition('cold', 'start_failed', {
      code: err.code,
      error: err.message,
      reason: err.details.reason,
      attempts: failures.length,
      failures,
      queuePending: this.queue.length,
    });
    this.queue.rejectAll(err);
    // A POST start during the failed start must not loop: it was this start.
    this.startAfterStop = false;
  }

  private becomeAdopted(started: Started, lastUsedAt: number, startedAt: number | null, via: string): void {
    this.epoch++;
    this.releaseClaim();
    this.claim = this.deps.placement.adopt?.(this.id, started.machine) ?? null;
    this.handle = started.handle;
    this.handleLauncher = started.launcher;
    this.machine = started.machine;
    this.vars = started.vars;
    this.startedAt = startedAt ?? Date.now();
    this.lastUsedAt = lastUsedAt;
    this.transition('hot', 'adopted', { via, lastUsedAt: iso(lastUsedAt), ...(started.handle.info ?? {}) });
    this.watchExit(started.handle, this.epoch);
    this.pump();
    // The idle clock continues from the recorded last use, not from now.
    this.idle.arm(lastUsedAt);
  }

  private watchExit(handle: LaunchHandle, epoch: number): void {
    handle.exited?.then(
      (info) => this.onExited(handle, epoch, info),
      () => {},
    );
  }

  /** The launched thing ended. While hot and not by our stop, that is a crash. */
  private onExited(handle: LaunchHandle, epoch: number, info: ExitInfo): void {
    if (this.paused?.handle === handle) {
      // Killed while paused: nothing to resume any more; the next start launches afresh.
      this.paused = null;
      this.lastError = {
        message: `crashed while paused: ${info.reason}`,
        code: 'crashed',
        at: new Date().toISOString(),
        attempts: 0,
      };
      this.log.warn(
        { event_type: 'service_paused_exited', reason: info.reason },
        `paused service '${this.id}' ended: ${info.reason}`,
      );
      this.saveState();
      return;
    }
    if (this.epoch !== epoch || this._state !== 'hot' || this.handle !== handle) return;
    const launcher = this.handleLauncher ?? this.launcher;
    this.handle = null;
    this.handleLauncher = null;
    this.startedAt = null;
    this.lastError = { message: `crashed: ${info.reason}`, code: 'crashed', at: new Date().toISOString(), attempts: 0 };
    this.idle.disarm();
    this.releaseClaim();
    this.transition('cold', 'crashed', { reason: info.reason, exitCode: info.code, signal: info.signal });
    // Whatever the crashed process left in its group (workers) goes too.
    if (this.machine && this.vars)
      this.track(
        stopQuietly(launcher, handle, this.launchContext(this.machine, this.vars, new AbortController().signal)),
      );
    // Requests waiting for a slot on the crashed service get a fresh start.
    if (this.queue.length > 0 && !this.shuttingDown) this.beginStart('request', 'restart after crash');
  }

  private beginStop(
    cause: 'idle' | 'api_stop' | 'shutdown' | 'evicted' | 'dependency',
    details: Record<string, unknown>,
  ): Promise<void> {
    if (this.stopTask) return this.stopTask;
    this.idle.disarm();
    if (this._state === 'starting') {
      const task = this.startTask;
      this.transition('stopping', cause, details);
      this.startAbort?.abort(new Error(`start cancelled (${cause})`));
      this.queue.rejectAll(
        cause === 'shutdown' ? shuttingDownError(this.id) : startCancelledError(this.id, 'a stop was requested'),
      );
      // The start's own clean-up stops whatever it launched; the stop is done when it is.
      this.stopTask = (task ?? Promise.resolve()).then(() => this.finishStop(null));
      return this.stopTask;
    }
    if (this._state !== 'hot') return Promise.resolve();
    const handle = this.handle;
    const launcher = this.handleLauncher ?? this.launcher;
    const machine = this.machine ?? this.firstMachine();
    const vars = this.vars ?? this.varsFor(machine);
    this.handle = null;
    this.handleLauncher = null;
    const idleMs = this.lastUsedAt === null ? null : Date.now() - this.lastUsedAt;
    // stop_mode: pause turns the idle stop into a pause (an explicit stop, an eviction or the
    // shutdown still stop it for real).
    const pause = cause === 'idle' && this.cfg.stop_mode === 'pause' && handle !== null && launcher.pause !== undefined;
    this.transition('stopping', cause, {
      ...details,
      ...(cause === 'idle' ? { idleMs } : {}),
      ...(pause ? { mode: 'pause' } : {}),
    });
    this.stopTask = (async () => {
      // Dependents first: what needs this service stops before it does.
      await this.deps.policy?.stopDependents(this.id, `'${this.id}' is stopping (${cause})`);
      let error: string | null = null;
      if (handle) {
        const ctx = this.launchContext(machine, vars, new AbortController().signal);
        if (pause && launcher.pause) {
          try {
            await launcher.pause(handle, ctx);
            this.finishStop(null, { handle, launcher, machine, vars });
            return;
          } catch (err) {
            this.log.warn(
              { event_type: 'service_pause_failed', err: message(err) },
              `pausing service '${this.id}' failed (${message(err)}); stopping it instead`,
            );
          }
        }
        try {
          await launcher.stop(handle, ctx);
        } catch (err) {
          error = message(err);
          this.log.error({ event_type: 'service_stop_failed', err: error }, `stopping service '${this.id}' failed`);
        }
      }
      this.finishStop(error);
    })();
    return this.stopTask;
  }

  /**
   * stopping → cold. A stop that failed still ends cold (with the error in the event), so a
   * service is never stuck in `stopping`; the next start will find out if it is still up.
   */
  private finishStop(error: string | null, paused: PausedLaunch | null = null): void {
    this.stopTask = null;
    this.startedAt = null;
    this.vars = null;
    // A paused launch gives its room back (documented limit: its memory stays in use).
    this.releaseClaim();
    this.paused = paused;
    if (error)
      this.lastError = {
        message: `stop failed: ${error}`,
        code: 'stop_failed',
        at: new Date().toISOString(),
        attempts: 0,
      };
    this.transition('cold', paused ? 'paused' : 'stopped', error ? { error } : {});
    if (this.shuttingDown) return;
    if (this.queue.length > 0 || this.startAfterStop) {
      const why = this.startAfterStop ? 'start requested during stop' : 'requests waited during stop';
      const cause = this.queue.length > 0 ? 'request' : 'api';
      this.startAfterStop = false;
      this.beginStart(cause, why);
    }
  }

  // ---- leases, queue, idle -------------------------------------------------------------

  private hasSlot(): boolean {
    const max = this.cfg.max_concurrency;
    return max === null || max === undefined || this.inflight < max;
  }

  /**
   * Grant queued waiters, oldest first, while the service is hot and slots are free — at most
   * GRANT_BATCH per turn of the event loop. Granting a whole cold-start queue (1,000 waiters)
   * in one synchronous pass kept the process busy for ~200 ms dispatching every request before
   * any upstream socket could connect; in batches, the first requests are on the wire while the
   * rest are still being granted. Each batch after the first waits for a poll phase of the
   * event loop (two chained immediates), so the first batch's connections complete and its
   * requests go out before the second batch's work. Order and accounting are unchanged: grants always come from
   * the head of the queue, each lease is counted in `inflight` when it is made, and while
   * waiters remain `tryAcquire` still refuses (nobody overtakes them between batches). The
   * continuation re-checks state, shutdown and slots like any other pump. Right after a start
   * the first batch is FIRST_GRANT_AFTER_START (one): the first forward goes out alone.
   */
  private pump(batch = GRANT_BATCH): void {
    let granted = 0;
    while (this._state === 'hot' && !this.shuttingDown && this.queue.length > 0 && this.hasSlot()) {
      if (granted === batch) {
        // The next batch after the loop's next poll phase, not before it: an immediate queued
        // from the check phase runs in the next turn, after its I/O. So the connections this
        // batch opened complete, and its first requests are written upstream, before the next
        // 16 are dispatched (granting from the first immediate delayed the first forward of a
        // cold start by a whole second batch, ~4-5 ms).
        this.pumpLater ??= setImmediate(() => {
          this.pumpLater = setImmediate(() => {
            this.pumpLater = null;
            this.pump();
            // Every remaining waiter may have left meanwhile with nothing in flight: then
            // nobody else would arm the idle clock (IdleClock.arm re-checks everything itself).
            if (this.inflight === 0) this.idle.arm();
          });
        });
        return;
      }
      const swap = this.swapOut;
      if (swap !== null) {
        if (swap.quota === null || swap.quota === 0) return; // the rest waits behind the swap
        swap.quota--;
      }
      this.queue.grantNext((info) => this.makeLease(info.waitedMs, info.coldStart));
      granted++;
    }
  }

  private makeLease(waitedMs: number, coldStart: boolean): Lease {
    this.inflight++;
    this.idle.disarm();
    this.markUsed();
    const urls = this.upstreamUrls();
    return new RuntimeLease(this, urls.base, urls.fallback, waitedMs, coldStart);
  }

  /** RuntimeLease.touch (not part of ServiceHandle). */
  leaseTouched(): void {
    this.markUsed();
    if (this.inflight === 0) this.idle.arm();
  }

  /** RuntimeLease.release, once per lease (not part of ServiceHandle). */
  leaseReleased(): void {
    this.inflight--;
    this.markUsed();
    this.pump();
    if (this.swapOut !== null) this.maybeSwapOut();
    if (this.inflight === 0) {
      this.idle.arm();
      for (const w of this.drainWaiters.splice(0)) w();
    }
  }

  /** The busy_check request, begun now; null without a busy_check. */
  private startBusyCheck(): Promise<BusyResult> | null {
    const check = this.cfg.busy_check;
    if (!check) return null;
    return checkBusy(check, expandTemplate(check.url, this.vars ?? this.varsFor(this.machine ?? this.firstMachine())));
  }

  private markUsed(): void {
    this.lastUsedAt = Date.now();
    this.touchWriter?.request();
  }

  // ---- helpers -------------------------------------------------------------------------

  /** For a queue deadline's error: what the service is doing right now. */
  private describeWait(): { note: string; details: Record<string, unknown> } {
    const details: Record<string, unknown> = { state: this._state };
    let note = `it is ${this._state}`;
    if (this._state === 'starting' && this.startBeganAt !== null) {
      details.startingForMs = Date.now() - this.startBeganAt;
      if (this.lastProbeDetail) {
        details.lastHealth = this.lastProbeDetail;
        note += ` (health_url last answered: ${this.lastProbeDetail})`;
      }
    }
    if (this._state === 'hot' && this.cfg.max_concurrency) note += ` with all ${this.cfg.max_concurrency} slots busy`;
    return { note, details };
  }

  /** ms left of the start backoff after a failed start (0 when none). */
  private backoffRemainingMs(now: number): number {
    return Math.max(0, this.backoffUntil - now);
  }

  private retryAfterSeconds(): number {
    if (this._state === 'hot') return 1;
    if (this._state === 'starting' && this.startBeganAt !== null && this.lastStartMs !== null) {
      return Math.max(1, Math.ceil((this.lastStartMs - (Date.now() - this.startBeganAt)) / 1000));
    }
    return DEFAULT_RETRY_AFTER_S;
  }

  /** base_url / fallback_url resolved for the current placement, cached per `vars` object. */
  private upstreamUrls(): { base: string; fallback: string | null } {
    const vars = this.vars ?? this.varsFor(this.machine ?? this.firstMachine());
    if (this.urlCache?.vars !== vars) {
      this.urlCache = {
        vars,
        base: expandTemplate(this.cfg.base_url, vars),
        fallback: this.cfg.fallback_url ? expandTemplate(this.cfg.fallback_url, vars) : null,
      };
    }
    return this.urlCache;
  }

  private firstMachine(): PlacedMachine {
    const first = this.deps.placement.candidates(this.id)[0];
    if (!first) throw new Error(`placement returned no machine for '${this.id}'`);
    return first;
  }

  private machineId(): string {
    return (this.machine ?? this.firstMachine()).id;
  }

  private varsFor(machine: PlacedMachine): TemplateVars {
    return templateVars(this.id, this.cfg.base_url, machine);
  }

  private launchContext(machine: PlacedMachine, vars: TemplateVars, signal: AbortSignal): LaunchContext {
    return { serviceId: this.id, machine, vars, log: this.log, signal, output: this.outputRing };
  }

  private releaseClaim(): void {
    this.claim?.release();
    this.claim = null;
  }

  private track(p: Promise<void>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  private publish(type: EventType, details: Record<string, unknown>): void {
    this.deps.bus.publish(type, this.id, details, this.machineId());
  }

  private saveState(): void {
    const paused = this._state === 'cold' ? this.paused : null;
    this.deps.sink?.save({
      serviceId: this.id,
      state: this._state,
      machineId: this.machineId(),
      launcherType: (paused?.launcher ?? this.handleLauncher ?? this.launcher).type,
      // A paused launch is recorded (cold, `paused: true`) so that a restarted gateway finds it.
      persist: paused ? { ...(paused.handle.persist ?? {}), paused: true } : (this.handle?.persist ?? null),
      startedAt: this.startedAt,
      lastUsedAt: this.lastUsedAt,
    });
  }
}

/**
 * Where a start's time went, in ms (0.01 ms resolution), for `service_ready`: `launchAfterMs`
 * from the start's beginning to the launcher's call (dependencies, placement, waking the
 * machine: the gateway's side), `launchTookMs` in that call (spawn, container start, job
 * submission: the back end's side), `readyAfterMs` from there to readiness (the service's own
 * start-up and the health probes). Of the last attempt when there were several.
 */
function startPhases(
  beganAt: number,
  launchedAt: Started['launchedAt'],
): { launchAfterMs?: number; launchTookMs?: number; readyAfterMs?: number } {
  if (launchedAt === undefined) return {};
  const ms = (a: number, b: number) => Math.round((b - a) * 100) / 100;
  return {
    launchAfterMs: ms(beganAt, launchedAt.called),
    launchTookMs: ms(launchedAt.called, launchedAt.returned),
    readyAfterMs: ms(launchedAt.returned, performance.now()),
  };
}
