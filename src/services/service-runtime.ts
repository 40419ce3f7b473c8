/**
 * One service's lifecycle: its state, wait queue, idle timer, in-flight count and launcher
 * handle, all owned by this object. Read services/DESIGN.md before changing it.
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
  LaunchError,
  type Launcher,
  type LaunchHandle,
  type PlacedMachine,
  type TemplateVars,
} from '../launchers/types.ts';
import type { EventBus, EventType } from '../observability/events.ts';
import type { Logger } from '../observability/logger.ts';
import { type BusyResult, checkBusy } from './busy-check.ts';
import {
  type StartFailure,
  StartTimeoutError,
  shuttingDownError,
  startCancelledError,
  startFailedError,
  startRetryAfterMs,
} from './errors.ts';
import { MachineUnavailableError, type Placement, type PlacementClaim, templateVars } from './placement.ts';
import { type ProbeResult, probeOnce, waitUntilReady } from './probe.ts';
import { WaitQueue } from './queue.ts';
import { planTransition, type TransitionCause } from './state-machine.ts';
import type { AcquireOptions, Lease, ServiceHandle, ServiceState, ServiceStatus } from './types.ts';

/** What the runtime writes to durable storage (the SQLite store, or nothing in unit tests). */
export interface StateSink {
  save(row: {
    serviceId: string;
    state: ServiceState;
    machineId: string | null;
    launcherType: string | null;
    persist: Record<string, unknown> | null;
    startedAt: number | null;
    lastUsedAt: number | null;
  }): void;
  touch(serviceId: string, lastUsedAt: number): void;
}

/** A recorded state from before a gateway restart (store row). */
export interface RecordedState {
  state: ServiceState;
  machineId: string | null;
  /** The launcher type that wrote `persist`; another type's facts are never handed to adopt. */
  launcherType: string | null;
  persist: Record<string, unknown> | null;
  startedAt: number | null;
  lastUsedAt: number | null;
}

export interface RuntimeDeps {
  bus: EventBus;
  log: Logger;
  launcher: Launcher;
  placement: Placement;
  sink?: StateSink | undefined;
}

/** Bound on the status endpoint's probe of a cold service (SPEC §2). */
export const STATUS_PROBE_TIMEOUT_MS = 1_000;
/** lastUsedAt is written behind, at most this often, so the hot path never waits on SQLite. */
const TOUCH_FLUSH_MS = 2_000;
/** At most one `queue_rejected` event per service per this interval. */
const REJECTED_EVENT_INTERVAL_MS = 1_000;
/** Retry-After for a full queue when nothing better is known. */
const DEFAULT_RETRY_AFTER_S = 5;
/**
 * Most waiters granted in one turn of the event loop (see `pump`). Exported for the tests,
 * which check order and in-flight counts across batches, never timing.
 */
export const GRANT_BATCH = 16;

interface Started {
  handle: LaunchHandle;
  /** The launcher that made `handle` (it stops it, even after a reload changed the launcher). */
  launcher: Launcher;
  machine: PlacedMachine;
  vars: TemplateVars;
}

const never = new Promise<never>(() => {});

function abortPromise(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

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

export class ServiceRuntime implements ServiceHandle {
  private _state: ServiceState = 'cold';
  private readonly queue: WaitQueue<Lease>;
  private readonly log: Logger;
  private inflight = 0;

  /** Bumped by every start; async work from an older epoch is stale and must not act. */
  private epoch = 0;
  private startAbort: AbortController | null = null;
  private startTask: Promise<void> | null = null;
  private startBeganAt: number | null = null;
  /** Set by POST start while stopping: start again once the stop is done. */
  private startAfterStop = false;
  private stopTask: Promise<void> | null = null;

  private handle: LaunchHandle | null = null;
  /** The launcher for new starts (replaced by a config reload). */
  private launcher: Launcher;
  /** The launcher that made `handle`. */
  private handleLauncher: Launcher | null = null;
  private machine: PlacedMachine | null = null;
  /** What placement holds for us on `machine` (capacity; "in use" for sleep) until we are cold. */
  private claim: PlacementClaim | null = null;
  private vars: TemplateVars | null = null;
  private urlCache: { vars: TemplateVars; base: string; fallback: string | null } | null = null;

  private idleTimer: NodeJS.Timeout | null = null;
  /** When the pending timer fires (may be before idleDeadline: see armIdle). */
  private idleTimerAt = 0;
  /** When the idle stop is due; null = not armed. */
  private idleDeadline: number | null = null;
  /** Bumped whenever the idle timer is disarmed: an in-flight busy check then stands down. */
  private idleToken = 0;

  private startedAt: number | null = null;
  private lastUsedAt: number | null = null;
  private lastStartMs: number | null = null;
  private lastError: string | null = null;
  /** The latest failed readiness probe of the start in progress (explains a 504). */
  private lastProbeDetail: string | null = null;
  private touchTimer: NodeJS.Timeout | null = null;
  /** Rejections not yet reported by a `queue_rejected` event (see noteRejected). */
  private rejectedPending = 0;
  private lastRejectedEventAt = 0;
  private rejectedTimer: NodeJS.Timeout | null = null;

  /** A pump continues in the next turn (after a full batch); null when none is pending. */
  private pumpLater: NodeJS.Immediate | null = null;

  private shuttingDown = false;
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
    this.queue = new WaitQueue<Lease>({
      serviceId: id,
      capacity: cfg.queue_size,
      timeoutMs: cfg.request_timeout_seconds * 1000,
      retryAfterSeconds: () => this.retryAfterSeconds(),
      onTimeout: (info) => this.publish('queue_timeout', { waitedMs: info.waitedMs, state: this._state }),
      describe: () => this.describeWait(),
    });
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
    if (this.shuttingDown || this._state !== 'hot' || this.queue.length > 0 || !this.hasSlot()) return null;
    return this.makeLease(0, false);
  }

  acquire(opts: AcquireOptions = {}): Promise<Lease> {
    if (this.shuttingDown) return Promise.reject(shuttingDownError(this.id));
    const lease = this.tryAcquire();
    if (lease) return Promise.resolve(lease);
    if (opts.signal?.aborted) return Promise.reject(opts.signal.reason);
    if (this.queue.isFull()) {
      this.noteRejected();
      return Promise.reject(this.queue.fullError());
    }
    const waiting = this.queue.enqueue({ signal: opts.signal, coldStart: this._state !== 'hot' });
    // cold: begin the one start. starting: the waiter joins it. stopping: the start follows
    // the stop (finishStop). hot: the waiter waits for a concurrency slot (pump on release).
    if (this._state === 'cold') this.beginStart('request', 'request');
    return waiting;
  }

  start(reason: string): boolean {
    if (this.shuttingDown) return false;
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
    if (this._state === 'cold' || this._state === 'stopping') return false;
    void this.beginStop('api_stop', { reason });
    return true;
  }

  // ---- capacity (src/machines/machine-placement.ts) --------------------------------------

  /**
   * Its last use when it could be stopped to make room for another service right now: hot,
   * nothing in flight, nothing queued, not shutting down. Null otherwise.
   */
  evictionCandidate(): { lastUsedAt: number } | null {
    if (this._state !== 'hot' || this.inflight > 0 || this.queue.length > 0 || this.shuttingDown || this.stopTask)
      return null;
    return { lastUsedAt: this.lastUsedAt ?? this.startedAt ?? 0 };
  }

  /** Its busy_check answer (null without one). Never rejects. */
  async busyCheck(): Promise<BusyResult | null> {
    const check = this.cfg.busy_check;
    if (!check) return null;
    return checkBusy(check, expandTemplate(check.url, this.vars ?? this.varsFor(this.machine ?? this.firstMachine())));
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
      idleRemainingMs: this.idleDeadline === null ? null : Math.max(0, this.idleDeadline - now),
      launcher: this.launcher.type,
      lastError: this.lastError,
    };
    // The original answered `automation: {enabled: false}` for services without automation.
    s.automation = automation ?? { enabled: false };
    return s;
  }

  /**
   * The status endpoint's check of a cold service (SPEC §2): probe its health_url once, at
   * most `timeoutMs`; a healthy upstream that is already running is adopted as hot. Does
   * nothing unless the service is cold and has a health_url.
   */
  async probe(timeoutMs = STATUS_PROBE_TIMEOUT_MS): Promise<void> {
    if (this._state !== 'cold' || !this.cfg.health_url || this.shuttingDown) return;
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
    // A larger max_concurrency may free slots for queued requests.
    this.pump();
    if (this._state === 'hot' && this.inflight === 0) this.armIdle(this.lastUsedAt ?? Date.now());
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

  // ---- shutdown (driven by the registry) -----------------------------------------------

  /**
   * Refuse new requests, fail every waiter with `error` (503 HESTIA_SHUTTING_DOWN by default),
   * abandon a start in progress. Also used when a reload removes the service.
   */
  beginShutdown(error: HestiaError = shuttingDownError(this.id)): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    this.startAfterStop = false;
    this.disarmIdle();
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
    await Promise.all(this.background);
    this.disarmIdle();
    this.clearIdleTimer();
    if (this.pumpLater) clearImmediate(this.pumpLater);
    this.pumpLater = null;
    if (this.rejectedTimer) clearTimeout(this.rejectedTimer);
    this.rejectedTimer = null;
    this.flushRejected();
    if (this.touchTimer) clearTimeout(this.touchTimer);
    this.touchTimer = null;
    this.saveState();
  }

  // ---- state changes -------------------------------------------------------------------

  /** The only writer of `_state`. Throws IllegalTransitionError on a bug. */
  private transition(to: ServiceState, cause: TransitionCause, details: Record<string, unknown> = {}): void {
    const from = this._state;
    const type = planTransition(from, to, cause);
    this._state = to;
    this.publish(type, { from, to, cause, ...details });
    this.saveState();
  }

  private beginStart(cause: 'request' | 'api', reason: string): void {
    this.disarmIdle();
    this.lastProbeDetail = null;
    const epoch = ++this.epoch;
    const ac = new AbortController();
    this.startAbort = ac;
    this.startBeganAt = Date.now();
    this.machine = this.firstMachine();
    this.transition('starting', cause, { reason, queuePending: this.queue.length });
    this.startTask = this.runStart(epoch, ac.signal).finally(() => {
      if (this.epoch === epoch) {
        this.startTask = null;
        this.startAbort = null;
      }
    });
  }

  /** All attempts of one start: `retry_count` per machine, machines in placement order. Never rejects. */
  private async runStart(epoch: number, signal: AbortSignal): Promise<void> {
    const stale = () => this.epoch !== epoch || signal.aborted;
    const perMachine = Math.max(1, this.cfg.retry_count);
    const failures: StartFailure[] = [];
    try {
      const machines = this.deps.placement.candidates(this.id);
      for (const [index, machine] of machines.entries()) {
        if (stale()) return;
        this.machine = machine;
        const before = failures.length;
        // The machine first (awake, room reserved); one that cannot take us costs no retries.
        try {
          const claim = (await this.deps.placement.prepare?.(this.id, machine, signal)) ?? null;
          if (stale()) {
            claim?.release();
            return;
          }
          this.claim = claim;
        } catch (err) {
          if (stale()) return;
          const stage = err instanceof MachineUnavailableError ? err.kind : 'prepare';
          failures.push({ machine: machine.id, attempt: 0, reason: message(err), timedOut: false, stage });
          this.noteMachineFailed(machine, machines[index + 1], failures.slice(before));
          continue;
        }
        for (let attempt = 1; attempt <= perMachine; attempt++) {
          if (stale()) return;
          this.machine = machine;
          try {
            const started = await this.attempt(machine, signal);
            if (stale()) {
              // Cancelled while the last step finished: do not leave it running.
              await this.stopQuietly(started.launcher, started.handle, started.machine, started.vars);
              return;
            }
            this.onStarted(started, failures.length + 1);
            return;
          } catch (err) {
            if (stale()) return;
            const timedOut = err instanceof StartTimeoutError;
            const reason = message(err);
            failures.push({ machine: machine.id, attempt, reason, timedOut, stage: 'start' });
            this.log.warn(
              { event_type: 'service_start_attempt_failed', machine_id: machine.id, attempt, reason },
              `start attempt ${attempt} of service '${this.id}' on ${machine.id} failed: ${reason}`,
            );
            if (attempt < perMachine && this.cfg.retry_delay_ms > 0) {
              await sleep(this.cfg.retry_delay_ms, undefined, { signal }).catch(() => {});
            }
          }
        }
        if (stale()) return;
        // Every attempt here failed: give the machine's room back before trying the next.
        this.releaseClaim();
        this.noteMachineFailed(machine, machines[index + 1], failures.slice(before));
      }
      if (stale()) return;
      this.onStartFailed(failures);
    } catch (err) {
      // A bug (illegal transition). Fail the waiters rather than leaving them hanging.
      this.log.error({ event_type: 'service_internal_error', err }, 'lifecycle bug during start');
      this.queue.rejectAll(new HestiaError('HESTIA_INTERNAL', `internal error while starting '${this.id}'`));
    }
  }

  /**
   * One attempt: launch, then wait for readiness, bounded by start_timeout_ms, failing at once
   * if the launched thing exits. On rejection nothing this attempt launched is left running.
   */
  private async attempt(machine: PlacedMachine, startSignal: AbortSignal): Promise<Started> {
    const launcher = this.launcher;
    let vars = this.varsFor(machine);
    const ac = new AbortController();
    const onStartAbort = () => ac.abort(startSignal.reason);
    startSignal.addEventListener('abort', onStartAbort, { once: true });
    const timeoutMs = this.cfg.start_timeout_ms;
    const timer = timeoutMs > 0 ? setTimeout(() => ac.abort(new StartTimeoutError(timeoutMs)), timeoutMs) : null;
    const ctx = this.launchContext(machine, vars, ac.signal);
    const aborted = abortPromise(ac.signal);
    let handle: LaunchHandle | null = null;
    let lastProbe: ProbeResult | null = null;
    try {
      const launching = launcher.start(ctx);
      try {
        handle = await Promise.race([launching, aborted]);
      } catch (err) {
        // A launcher that finishes after we gave up still gets its launch undone.
        launching.then((h) => this.stopQuietly(launcher, h, machine, vars)).catch(() => {});
        throw err;
      }
      if (handle.host) vars = { ...vars, host: handle.host };
      const exitedEarly: Promise<never> = handle.exited
        ? handle.exited.then((info: ExitInfo) => {
            throw new LaunchError(`the launched process ${info.reason} during the start`, { exit: info });
          })
        : never;
      await Promise.race([
        waitUntilReady({
          healthUrl: this.cfg.health_url ? expandTemplate(this.cfg.health_url, vars) : null,
          intervalMs: this.cfg.health_interval_ms,
          warmupMs: this.cfg.warmup_ms,
          signal: ac.signal,
          onProbe: (r) => {
            lastProbe = r;
            this.lastProbeDetail = r.detail;
          },
        }),
        exitedEarly,
        aborted,
      ]);
      return { handle, launcher, machine, vars };
    } catch (err) {
      ac.abort(err);
      if (handle) await this.stopQuietly(launcher, handle, machine, vars);
      if (err instanceof StartTimeoutError && lastProbe) {
        const probe: ProbeResult = lastProbe;
        throw Object.assign(new StartTimeoutError(timeoutMs), {
          message: `${err.message}; health_url last answered: ${probe.detail}`,
        });
      }
      throw err;
    } finally {
      if (timer) clearTimeout(timer);
      startSignal.removeEventListener('abort', onStartAbort);
    }
  }

  private onStarted(started: Started, attempts: number): void {
    const now = Date.now();
    this.handle = started.handle;
    this.handleLauncher = started.launcher;
    this.machine = started.machine;
    this.vars = started.vars;
    this.startedAt = now;
    this.lastUsedAt = now;
    this.lastError = null;
    this.lastStartMs = this.startBeganAt === null ? null : now - this.startBeganAt;
    this.transition('hot', 'ready', { coldStartMs: this.lastStartMs, attempts, ...(started.handle.info ?? {}) });
    this.watchExit(started.handle, this.epoch);
    this.pump();
    this.armIdle();
  }

  private onStartFailed(failures: StartFailure[]): void {
    const err = startFailedError(this.id, failures, startRetryAfterMs(this.cfg.retry_delay_ms));
    this.lastError = err.message;
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
    this.armIdle(lastUsedAt);
  }

  private watchExit(handle: LaunchHandle, epoch: number): void {
    handle.exited?.then(
      (info) => this.onExited(handle, epoch, info),
      () => {},
    );
  }

  /** The launched thing ended. While hot and not by our stop, that is a crash. */
  private onExited(handle: LaunchHandle, epoch: number, info: ExitInfo): void {
    if (this.epoch !== epoch || this._state !== 'hot' || this.handle !== handle) return;
    const launcher = this.handleLauncher ?? this.launcher;
    this.handle = null;
    this.handleLauncher = null;
    this.startedAt = null;
    this.lastError = `crashed: ${info.reason}`;
    this.disarmIdle();
    this.releaseClaim();
    this.transition('cold', 'crashed', { reason: info.reason, exitCode: info.code, signal: info.signal });
    // Whatever the crashed process left in its group (workers) goes too.
    if (this.machine && this.vars) this.track(this.stopQuietly(launcher, handle, this.machine, this.vars));
    // Requests waiting for a slot on the crashed service get a fresh start.
    if (this.queue.length > 0 && !this.shuttingDown) this.beginStart('request', 'restart after crash');
  }

  private beginStop(
    cause: 'idle' | 'api_stop' | 'shutdown' | 'evicted',
    details: Record<string, unknown>,
  ): Promise<void> {
    if (this.stopTask) return this.stopTask;
    this.disarmIdle();
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
    this.transition('stopping', cause, { ...details, ...(cause === 'idle' ? { idleMs } : {}) });
    this.stopTask = (async () => {
      let error: string | null = null;
      if (handle) {
        try {
          await launcher.stop(handle, this.launchContext(machine, vars, new AbortController().signal));
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
  private finishStop(error: string | null): void {
    this.stopTask = null;
    this.startedAt = null;
    this.vars = null;
    this.releaseClaim();
    if (error) this.lastError = `stop failed: ${error}`;
    this.transition('cold', 'stopped', error ? { error } : {});
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
   * rest are still being granted. Order and accounting are unchanged: grants always come from
   * the head of the queue, each lease is counted in `inflight` when it is made, and while
   * waiters remain `tryAcquire` still refuses (nobody overtakes them between batches). The
   * continuation re-checks state, shutdown and slots like any other pump.
   */
  private pump(): void {
    let granted = 0;
    while (this._state === 'hot' && !this.shuttingDown && this.queue.length > 0 && this.hasSlot()) {
      if (granted === GRANT_BATCH) {
        this.pumpLater ??= setImmediate(() => {
          this.pumpLater = null;
          this.pump();
          // Every remaining waiter may have left meanwhile with nothing in flight: then
          // nobody else would arm the idle clock (armIdle re-checks everything itself).
          if (this.inflight === 0) this.armIdle();
        });
        return;
      }
      this.queue.grantNext((info) => this.makeLease(info.waitedMs, info.coldStart));
      granted++;
    }
  }

  private makeLease(waitedMs: number, coldStart: boolean): Lease {
    this.inflight++;
    this.disarmIdle();
    this.markUsed();
    const urls = this.upstreamUrls();
    return new RuntimeLease(this, urls.base, urls.fallback, waitedMs, coldStart);
  }

  /** RuntimeLease.touch (not part of ServiceHandle). */
  leaseTouched(): void {
    this.markUsed();
    if (this.inflight === 0) this.armIdle();
  }

  /** RuntimeLease.release, once per lease (not part of ServiceHandle). */
  leaseReleased(): void {
    this.inflight--;
    this.markUsed();
    this.pump();
    if (this.inflight === 0) {
      this.armIdle();
      for (const w of this.drainWaiters.splice(0)) w();
    }
  }

  /**
   * Arm the idle stop: due `idle_timeout_ms` after `since` (default now). Only when hot,
   * enabled, and nothing is in flight or waiting.
   *
   * The deadline moves on every release, but the timer does not: it is created once and, when
   * it fires early (the deadline moved meanwhile), re-scheduled for the remainder. A busy
   * service thus costs one timer per idle period, not one per request.
   */
  private armIdle(since = Date.now()): void {
    this.idleToken++;
    const ms = this.cfg.idle_timeout_ms;
    if (ms <= 0 || this._state !== 'hot' || this.inflight > 0 || this.queue.length > 0 || this.shuttingDown) {
      this.idleDeadline = null;
      return;
    }
    this.idleDeadline = since + ms;
    // A pending timer due later than the new deadline (re-adoption with an old lastUsedAt,
    // or a shorter period after a config change) is replaced; an earlier one is kept.
    if (this.idleTimer && this.idleTimerAt > this.idleDeadline) this.clearIdleTimer();
    if (!this.idleTimer) this.scheduleIdleTimer(this.idleDeadline);
  }

  private scheduleIdleTimer(at: number): void {
    this.idleTimerAt = at;
    this.idleTimer = setTimeout(() => this.onIdleTimer(), Math.max(0, at - Date.now()));
    // The gateway's server keeps the process alive; a pending idle stop alone should not.
    this.idleTimer.unref();
  }

  private clearIdleTimer(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  /** No idle stop is due (a request is in flight, or the service is not hot). */
  private disarmIdle(): void {
    this.idleDeadline = null;
    this.idleToken++;
  }

  private onIdleTimer(): void {
    this.idleTimer = null;
    const deadline = this.idleDeadline;
    if (deadline === null) return;
    if (Date.now() < deadline) {
      this.scheduleIdleTimer(deadline);
      return;
    }
    if (this._state !== 'hot' || this.inflight > 0 || this.queue.length > 0 || this.shuttingDown) return;
    const check = this.cfg.busy_check;
    if (!check) {
      void this.beginStop('idle', {});
      return;
    }
    const token = this.idleToken;
    const url = expandTemplate(check.url, this.vars ?? this.varsFor(this.machine ?? this.firstMachine()));
    void checkBusy(check, url).then((res) => {
      // Any acquire/touch/stop since the timer fired disarmed (bumped the token): stand down.
      if (token !== this.idleToken || this._state !== 'hot' || this.inflight > 0 || this.queue.length > 0) return;
      if (res.busy) {
        this.log.info(
          { event_type: 'idle_postponed', detail: res.detail },
          `service '${this.id}' is busy (${res.detail}); idle stop postponed`,
        );
        this.armIdle();
        return;
      }
      void this.beginStop('idle', { busyCheck: res.detail });
    });
  }

  /**
   * `queue_rejected`, throttled to one event per service per second: a flood of rejections must
   * not flood the log or push lifecycle events out of the store's retention. Each event's
   * `count` says how many rejections it stands for (metrics add it up).
   */
  private noteRejected(): void {
    this.rejectedPending++;
    const wait = this.lastRejectedEventAt + REJECTED_EVENT_INTERVAL_MS - Date.now();
    if (wait <= 0) {
      this.flushRejected();
      return;
    }
    // The rejections of this window are reported when it ends (never lost).
    if (!this.rejectedTimer) {
      this.rejectedTimer = setTimeout(() => {
        this.rejectedTimer = null;
        this.flushRejected();
      }, wait);
      this.rejectedTimer.unref();
    }
  }

  private flushRejected(): void {
    if (this.rejectedPending === 0) return;
    this.lastRejectedEventAt = Date.now();
    const count = this.rejectedPending;
    this.rejectedPending = 0;
    this.publish('queue_rejected', {
      reason: 'queue_full',
      count,
      queuePending: this.queue.length,
      queueSize: this.cfg.queue_size,
      state: this._state,
    });
  }

  private markUsed(): void {
    this.lastUsedAt = Date.now();
    if (this.touchTimer || !this.deps.sink) return;
    this.touchTimer = setTimeout(() => {
      this.touchTimer = null;
      if (this.lastUsedAt !== null) this.deps.sink?.touch(this.id, this.lastUsedAt);
    }, TOUCH_FLUSH_MS);
    this.touchTimer.unref();
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
    return { serviceId: this.id, machine, vars, log: this.log, signal };
  }

  private async stopQuietly(
    launcher: Launcher,
    handle: LaunchHandle,
    machine: PlacedMachine,
    vars: TemplateVars,
  ): Promise<void> {
    try {
      await launcher.stop(handle, this.launchContext(machine, vars, new AbortController().signal));
    } catch (err) {
      this.log.warn({ event_type: 'service_cleanup_failed', err: message(err) }, 'clean-up stop failed');
    }
  }

  private releaseClaim(): void {
    this.claim?.release();
    this.claim = null;
  }

  /**
   * A machine was given up on (its prepare or all its attempts failed): when there is a next
   * one, a `machine_failover` event with that machine's failures. (The last machine's failures
   * are in `service_start_failed`.)
   */
  private noteMachineFailed(machine: PlacedMachine, next: PlacedMachine | undefined, failures: StartFailure[]): void {
    const last = failures.at(-1);
    if (!next || !last) return;
    this.deps.bus.publish(
      'machine_failover',
      this.id,
      { from: machine.id, to: next.id, stage: last.stage, reason: last.reason, attempts: failures },
      machine.id,
    );
  }

  private track(p: Promise<void>): void {
    this.background.add(p);
    void p.finally(() => this.background.delete(p));
  }

  private publish(type: EventType, details: Record<string, unknown>): void {
    this.deps.bus.publish(type, this.id, details, this.machineId());
  }

  private saveState(): void {
    this.deps.sink?.save({
      serviceId: this.id,
      state: this._state,
      machineId: this.machineId(),
      launcherType: (this.handleLauncher ?? this.launcher).type,
      persist: this.handle?.persist ?? null,
      startedAt: this.startedAt,
      lastUsedAt: this.lastUsedAt,
    });
  }
}
