/**
 * The attempts of one start (services/DESIGN.md, "Starting"): the placement's candidates in
 * order; on each, `prepare` (a claim, or a MachineUnavailableError that costs no retries), then
 * `retry_count` attempts `retry_delay_ms` apart; one attempt is launch + readiness, bounded by
 * `start_timeout_ms` and failing at once if the launched thing exits.
 *
 * It never changes the service's state. What it finds out goes to its host (the
 * ServiceRuntime) through the callbacks below — the machine being tried, the claim, the last
 * probe, and finally `started` or `failed`, which make the transition — each called only
 * while the start is still current (`stale()` false), synchronously after the check.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServiceConfig } from '../config/schema.ts';
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
import type { EventBus } from '../observability/events.ts';
import type { Logger } from '../observability/logger.ts';
import type { ProbeResult } from '../remote/http-probe.ts';
import { type StartFailure, StartTimeoutError } from './errors.ts';
import { MachineUnavailableError, type Placement, type PlacementClaim } from './placement.ts';
import { waitUntilReady } from './probe.ts';
import { answeringStranger, checkPortBeforeLaunch, type PortCheck } from './stranger-check.ts';

/** What a successful attempt launched, and where. */
export interface Started {
  handle: LaunchHandle;
  /** The launcher that made `handle` (it stops it, even after a reload changed the launcher). */
  launcher: Launcher;
  machine: PlacedMachine;
  vars: TemplateVars;
  /**
   * When (performance.now()) the launcher was called and when its launch returned (the process
   * spawned, the container started, the job submitted): the start's phases in `service_ready`.
   * Absent when nothing was launched (a resume, an adopted stranger).
   */
  launchedAt?: { called: number; returned: number };
}

export interface LaunchHost {
  readonly id: string;
  readonly log: Logger;
  readonly bus: EventBus;
  readonly placement: Placement;
  /** The service's settings and launcher as they are now (a reload may change them mid-start). */
  config(): ServiceConfig;
  launcher(): Launcher;
  varsFor(machine: PlacedMachine): TemplateVars;
  launchContext(machine: PlacedMachine, vars: TemplateVars, signal: AbortSignal): LaunchContext;
  /** The start is now on `machine` (status and events name it). */
  onMachine(machine: PlacedMachine): void;
  /** `prepare` on the current machine returned this claim (null: nothing to prepare). */
  onClaim(claim: PlacementClaim | null): void;
  /** Every attempt on the current machine failed: give its room back before the next one. */
  releaseClaim(): void;
  /** A failed readiness probe of this start (explains a later 504). */
  onProbe(detail: string): void;
  /** An attempt succeeded: the host makes `starting → hot`. */
  started(started: Started, attempts: number): void;
  /** Every machine and attempt failed: the host makes `starting → cold`. */
  failed(failures: StartFailure[]): void;
}

const never = new Promise<never>(() => {});

function abortPromise(signal: AbortSignal): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Stop a launch we no longer want; a failure is only logged (warn on the context's logger). */
export async function stopQuietly(launcher: Launcher, handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
  try {
    await launcher.stop(handle, ctx);
  } catch (err) {
    ctx.log.warn({ event_type: 'service_cleanup_failed', err: message(err) }, 'clean-up stop failed');
  }
}

/**
 * All attempts of one start: `retry_count` per machine, machines in placement order. Returns
 * (without calling back) as soon as `stale()` says the start was cancelled or superseded;
 * rejects only on a bug in a callback (the caller fails the waiters).
 */
export async function runLaunchAttempts(host: LaunchHost, signal: AbortSignal, stale: () => boolean): Promise<void> {
  const perMachine = Math.max(1, host.config().retry_count);
  const failures: StartFailure[] = [];
  const machines = host.placement.candidates(host.id);
  for (const [index, machine] of machines.entries()) {
    if (stale()) return;
    host.onMachine(machine);
    const before = failures.length;
    // The machine first (awake, room reserved); one that cannot take us costs no retries.
    let claim: PlacementClaim | null;
    try {
      claim = (await host.placement.prepare?.(host.id, machine, signal)) ?? null;
      if (stale()) {
        claim?.release();
        return;
      }
      host.onClaim(claim);
    } catch (err) {
      if (stale()) return;
      const stage = err instanceof MachineUnavailableError ? err.kind : 'prepare';
      failures.push({ machine: machine.id, attempt: 0, reason: message(err), timedOut: false, stage });
      noteMachineFailed(host, machine, machines[index + 1], failures.slice(before));
      continue;
    }
    for (let attempt = 1; attempt <= perMachine; attempt++) {
      if (stale()) return;
      host.onMachine(machine);
      try {
        const started = await attemptOn(host, machine, signal);
        if (stale()) {
          // Cancelled while the last step finished: do not leave it running.
          await stopQuietly(
            started.launcher,
            started.handle,
            host.launchContext(started.machine, started.vars, new AbortController().signal),
          );
          return;
        }
        host.started(started, failures.length + 1);
        return;
      } catch (err) {
        if (stale()) return;
        // The machine's check ran beside the launch: when it did not answer, the launch's own
        // failure says the same; record why the machine is out, as `prepare` would have, and
        // move on without spending the retries.
        const unreachable = claim?.unreachable ? await claim.unreachable : null;
        if (stale()) return;
        if (unreachable) {
          host.log.debug(
            { event_type: 'service_start_attempt_failed', machine_id: machine.id, attempt, reason: message(err) },
            `start attempt ${attempt} of service '${host.id}' on ${machine.id} failed (the machine did not answer): ${message(err)}`,
          );
          failures.push({
            machine: machine.id,
            attempt: 0,
            reason: unreachable.message,
            timedOut: false,
            stage: unreachable.kind,
          });
          break;
        }
        const timedOut = err instanceof StartTimeoutError;
        const reason = message(err);
        failures.push({ machine: machine.id, attempt, reason, timedOut, stage: 'start' });
        host.log.warn(
          { event_type: 'service_start_attempt_failed', machine_id: machine.id, attempt, reason },
          `start attempt ${attempt} of service '${host.id}' on ${machine.id} failed: ${reason}`,
        );
        const delay = host.config().retry_delay_ms;
        if (attempt < perMachine && delay > 0) {
          await sleep(delay, undefined, { signal }).catch(() => {});
        }
      }
    }
    if (stale()) return;
    // Every attempt here failed: give the machine's room back before trying the next.
    host.releaseClaim();
    noteMachineFailed(host, machine, machines[index + 1], failures.slice(before));
  }
  if (stale()) return;
  host.failed(failures);
}

/**
 * One attempt: launch, then wait for readiness, bounded by start_timeout_ms, failing at once
 * if the launched thing exits. On rejection nothing this attempt launched is left running.
 */
async function attemptOn(host: LaunchHost, machine: PlacedMachine, startSignal: AbortSignal): Promise<Started> {
  const launcher = host.launcher();
  const cfg = host.config();
  let vars = host.varsFor(machine);
  const ac = new AbortController();
  const onStartAbort = () => ac.abort(startSignal.reason);
  startSignal.addEventListener('abort', onStartAbort, { once: true });
  const timeoutMs = cfg.start_timeout_ms;
  const timer = timeoutMs > 0 ? setTimeout(() => ac.abort(new StartTimeoutError(timeoutMs)), timeoutMs) : null;
  const ctx = host.launchContext(machine, vars, ac.signal);
  const cleanupCtx = () => host.launchContext(machine, vars, new AbortController().signal);
  const aborted = abortPromise(ac.signal);
  // Raced below; handled here too for an attempt that fails before the race (a foreign server).
  aborted.catch(() => {});
  let handle: LaunchHandle | null = null;
  let lastProbe: ProbeResult | null = null;
  try {
    // A local child's address may already be held by a server Hestia did not start (a remote
    // launcher's leftover is re-adopted at boot instead, and `none` launches nothing). On a
    // loopback address the check is a connect issued just before the launch and read after it,
    // so the launch does not wait for the event loop (stranger-check.ts). With adopt_running a
    // stranger is expected to be up, so it is probed first and nothing is launched beside it.
    let portCheck: PortCheck | null = null;
    if (launcher.stopOnShutdown === true) {
      portCheck = cfg.adopt_running ? null : checkPortBeforeLaunch(cfg, vars);
      if (portCheck === null) {
        const stranger = await answeringStranger(cfg, vars, ac.signal);
        if (stranger !== null) return strangerFound(host, cfg, stranger, launcher, machine, vars);
      } else {
        await portCheck.connectIssued;
      }
    }
    const called = performance.now();
    const launching = launcher.start(ctx);
    let returned = called;
    try {
      handle = await Promise.race([launching, aborted]);
      returned = performance.now();
    } catch (err) {
      // A launcher that finishes after we gave up still gets its launch undone.
      launching.then((h) => stopQuietly(launcher, h, cleanupCtx())).catch(() => {});
      throw err;
    }
    if (portCheck !== null && (await Promise.race([portCheck.accepted, aborted])) === true) {
      // Something held the port before the launch: if it answers HTTP it is a stranger (unless
      // /proc shows the listener is our own child after all), and the child just launched, which
      // cannot have its address, is stopped.
      const stranger = await answeringStranger(cfg, vars, ac.signal, ownGroup(handle));
      if (stranger !== null) {
        const launched = handle;
        handle = null;
        await stopQuietly(launcher, launched, cleanupCtx());
        return strangerFound(host, cfg, stranger, launcher, machine, vars);
      }
    }
    if (handle.host) vars = { ...vars, host: handle.host };
    const exitedEarly: Promise<never> = handle.exited
      ? handle.exited.then((info: ExitInfo) => {
          throw new LaunchError(
            `the launched process ${info.reason} during the start${addressInUseHint(info.reason)}`,
            {
              exit: info,
            },
          );
        })
      : never;
    // Read after the launch, as before the split: a reload during the launch applies here.
    const ready = host.config();
    await Promise.race([
      waitUntilReady({
        healthUrl: ready.health_url ? expandTemplate(ready.health_url, vars) : null,
        intervalMs: ready.health_interval_ms,
        warmupMs: ready.warmup_ms,
        signal: ac.signal,
        onProbe: (r) => {
          lastProbe = r;
          host.onProbe(r.detail);
        },
      }),
      exitedEarly,
      aborted,
    ]);
    return { handle, launcher, machine, vars, launchedAt: { called, returned } };
  } catch (err) {
    ac.abort(err);
    if (handle) await stopQuietly(launcher, handle, cleanupCtx());
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

/** A stranger holds the address: refuse the start, or (`adopt_running`) use it as the service. */
function strangerFound(
  host: LaunchHost,
  cfg: ServiceConfig,
  stranger: string,
  launcher: Launcher,
  machine: PlacedMachine,
  vars: TemplateVars,
): Started {
  if (!cfg.adopt_running) throw new LaunchError(stranger);
  host.log.warn(
    { event_type: 'service_adopted_running', reason: stranger },
    `service '${host.id}': adopt_running: using the server already answering instead of launching (${stranger})`,
  );
  // Nothing of ours runs, nothing to stop: the launcher's stop() of an empty handle is a no-op.
  return { handle: {}, launcher, machine, vars };
}

/** The process group of a launched local child (its pid: the process launcher starts a group). */
function ownGroup(handle: LaunchHandle): number | null {
  const pid = handle.info?.pid;
  return typeof pid === 'number' ? pid : null;
}

/** A child that died because its port was taken says so plainly (the stack line may be long). */
function addressInUseHint(reason: string): string {
  return /EADDRINUSE|address already in use/i.test(reason) ? ' (its address is already in use by another process)' : '';
}

/**
 * A machine was given up on (its prepare or all its attempts failed): when there is a next
 * one, a `machine_failover` event with that machine's failures. (The last machine's failures
 * are in `service_start_failed`.) An event only: no state changes.
 */
function noteMachineFailed(
  host: LaunchHost,
  machine: PlacedMachine,
  next: PlacedMachine | undefined,
  failures: StartFailure[],
): void {
  const last = failures.at(-1);
  if (!next || !last) return;
  host.bus.publish(
    'machine_failover',
    host.id,
    { from: machine.id, to: next.id, stage: last.stage, reason: last.reason, attempts: failures },
    machine.id,
  );
}
