/**
 * Machine power (SPEC §6): wake a machine before starting a service there, put it to sleep
 * when none of its services has been up for `idle_sleep_ms`.
 *
 * - Reachable: the machine's `wake.wait_url` answers 2xx, else its SSH port accepts a TCP
 *   connection. A machine with neither is not checked (assumed up). The gateway's own machine
 *   (`local`) is always reachable and is never woken or slept.
 * - Wake (`ensureAwake`): probe once; when the machine does not answer, run its `wake` action
 *   (wol magic packet, local command, ssh command, http request) and then poll reachability
 *   every `wait_interval_ms` until `wait_timeout_ms`. One wake per machine at a time: concurrent
 *   starts join it. Each caller can give up (its start's abort signal) without cancelling the
 *   wake for the others. One `machine_wake` event per wake, when it ends, with its result.
 *   `checkBeforeLaunch` runs that probe beside an `ssh` launch instead, when nothing but the
 *   ssh port is to be checked (no agent, no wake action) and the machine is not known down.
 * - Sleep: a machine is "in use" while any service holds a capacity claim on it (starting, hot
 *   or stopping) or a start is preparing there (`hold`). When that drops to zero — and the
 *   machine was in use since the gateway started, so a boot never suspends a machine the gateway
 *   knows nothing about — one timer is armed for `idle_sleep_ms`; any use disarms it. When it
 *   fires, the `sleep` action runs (event `machine_sleep`). Timers, never a polling loop.
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOCAL_MACHINE_ID } from '../config/machine-order.ts';
import type { Config, MachineConfig, PowerActionConfig } from '../config/schema.ts';
import { expandTemplate, type TemplateVars } from '../launchers/types.ts';
import type { EventBus } from '../observability/events.ts';
import type { Logger } from '../observability/logger.ts';
import { sendHttpCall } from '../remote/http-call.ts';
import { probeOnce } from '../remote/http-probe.ts';
import { excerpt } from '../remote/output-excerpt.ts';
import { runOnMachine } from '../remote/ssh/exec.ts';
import { MachineUnavailableError } from '../services/placement.ts';
import { probeAgent } from './agent-probe.ts';
import { sendWol, WOL_DEFAULT_ADDRESS, WOL_DEFAULT_PORT } from './wol.ts';

/** Bound on one probe of a `wait_url`. */
const URL_PROBE_TIMEOUT_MS = 2_000;

/**
 * What `GET /v1/machines` shows: `always_on` (local, or no wake/sleep configured), `unknown`
 * (not checked yet), `awake` (last check answered), `unreachable` (last check did not),
 * `waking`, `going_to_sleep` (sleep action running), `asleep` (sleep action succeeded).
 */
export type PowerState = 'always_on' | 'unknown' | 'awake' | 'unreachable' | 'waking' | 'going_to_sleep' | 'asleep';

export interface PowerInfo {
  state: PowerState;
  /** Type of the configured wake/sleep action, null when none. */
  wake: PowerActionConfig['type'] | null;
  sleep: PowerActionConfig['type'] | null;
  idleSleepMs: number | null;
  /** When the armed sleep timer fires (ISO), null when not armed. */
  sleepDueAt: string | null;
  lastWakeAt: string | null;
  lastSleepAt: string | null;
  lastError: string | null;
}

export interface ReachResult {
  ok: boolean;
  /** What was asked: `ssh port 10.0.0.5:22`, `wait_url http://…`, `not checked`. */
  via: string;
  detail: string;
  /** Something answered but refused (an agent with a wrong token): up, so never woken. */
  answered?: boolean;
}

interface MachinePower {
  state: PowerState;
  waking: Promise<void> | null;
  sleeping: Promise<void> | null;
  sleepTimer: NodeJS.Timeout | null;
  sleepDueAt: number | null;
  /** Starts preparing on this machine (wake + reservation in progress). */
  holds: number;
  /** In use at least once since the gateway started (or since it last went to sleep). */
  used: boolean;
  /** When it last stopped being in use. */
  idleSince: number | null;
  lastWakeAt: number | null;
  lastSleepAt: number | null;
  lastError: string | null;
  /**
   * When a probe (or a finished wake) last found it answering, and under which config of the
   * machine (a reload that changes it ends the trust); null when that is not trusted.
   */
  reachedAt: number | null;
  reachedWith: MachineConfig | null;
}

export interface PowerDeps {
  getConfig: () => Config;
  bus: EventBus;
  log: Logger;
  /** How many capacity claims the machine holds now (the ledger). */
  claimCount: (machineId: string) => number;
  /** The clock of REACH_TRUST_MS, in ms (tests move it by hand); default performance.now. */
  now?: () => number;
}

/**
 * A machine found answering this recently is not probed again before a start: the start goes
 * straight to its launcher. The probe is an await on the network (a round trip to a remote
 * machine), and while it was pending a burst of requests for a cold service was all read and
 * queued before the launch (~50 ms for 1,000 requests). Only an `awake` machine is trusted: one
 * Hestia put to sleep, found unreachable, or that answered but refused, is probed every time. A
 * machine that went away within the window fails the start attempt instead (the launcher's own
 * error, with retries), rather than failing over without costing one. Machines with an agent
 * are not trusted this way (trustsReach).
 */
export const REACH_TRUST_MS = 10_000;

/** Machines with an agent are asked before every start: the agent's token check is the point. */
function trustsReach(m: MachineConfig): boolean {
  return m.agent === undefined;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Template vars of a machine's own actions: `{host}`, `{machine}`. */
function machineVars(machineId: string, m: MachineConfig): TemplateVars {
  return { host: m.host, machine: machineId, port: String(m.ssh?.port ?? ''), service: '' };
}

/** Resolve with `p`, or reject with the signal's reason when it aborts first. */
export function raceSignal<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** TCP connect to host:port within `timeoutMs`. Never rejects. */
export function tcpProbe(host: string, port: number, timeoutMs: number, signal?: AbortSignal): Promise<ReachResult> {
  const via = `ssh port ${host}:${port}`;
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    let done = false;
    const finish = (ok: boolean, detail: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      sock.destroy();
      resolve({ ok, via, detail });
    };
    const onAbort = () => finish(false, 'aborted');
    const timer = setTimeout(() => finish(false, `no answer within ${timeoutMs} ms`), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    sock.once('connect', () => finish(true, 'accepts connections'));
    sock.once('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
  });
}

/**
 * Is the machine up? Its agent when it has one (agent-probe.ts), else its `wake.wait_url` when set, else its SSH port; a machine with neither
 * cannot be checked and counts as reachable.
 */
export async function probeMachine(machineId: string, m: MachineConfig, signal?: AbortSignal): Promise<ReachResult> {
  // A machine with an agent is up when its agent answers with our token (SPEC §15).
  if (m.agent) return probeAgent(machineId, m.agent, signal);
  const waitUrl = m.wake?.wait_url;
  if (waitUrl) {
    const url = expandTemplate(waitUrl, machineVars(machineId, m));
    const r = await probeOnce(url, URL_PROBE_TIMEOUT_MS, signal);
    return { ok: r.ok, via: `wait_url ${url}`, detail: r.detail };
  }
  if (m.ssh) return tcpProbe(m.host, m.ssh.port, m.ssh.connect_timeout_ms, signal);
  return { ok: true, via: 'not checked', detail: 'no ssh settings and no wake.wait_url' };
}

/** Run a local command (argv, or a string through /bin/sh -c), bounded; reject on a non-zero exit. */
function runLocalCommand(command: string | string[], timeoutMs: number, signal?: AbortSignal): Promise<string> {
  const [file, args] =
    typeof command === 'string' ? ['/bin/sh', ['-c', command]] : [command[0] ?? '', command.slice(1)];
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 256 * 1024, ...(signal ? { signal } : {}) },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: number | string };
        const why = e.killed
          ? `killed after ${timeoutMs} ms (timeout_ms)`
          : typeof e.code === 'number'
            ? `exited with code ${e.code}`
            : e.message;
        const out = excerpt(stderr || stdout, 300);
        reject(new Error(`command ${why}${out ? `: ${out}` : ''}`));
      },
    );
  });
}

/** POST (or `method`) to `url`; 2xx = done. Header values never reach a message. */
async function runHttpAction(a: PowerActionConfig, vars: TemplateVars, signal?: AbortSignal): Promise<string> {
  // The same templated call as the http launcher's start/stop.
  const r = await sendHttpCall(
    { url: a.url ?? '', method: a.method ?? 'POST', headers: a.headers ?? {}, body: a.body, timeoutMs: a.timeout_ms },
    vars,
    signal,
  );
  if (r.status < 200 || r.status > 299) throw new Error(`${r.where} answered ${r.status}: ${excerpt(r.text, 200)}`);
  return `${r.where} answered ${r.status}`;
}

export class PowerManager {
  private readonly machines = new Map<string, MachinePower>();
  private readonly closing = new AbortController();

  constructor(private readonly deps: PowerDeps) {}

  private get(machineId: string): MachinePower {
    let p = this.machines.get(machineId);
    if (!p) {
      p = {
        state: 'unknown',
        waking: null,
        sleeping: null,
        sleepTimer: null,
        sleepDueAt: null,
        holds: 0,
        used: false,
        idleSince: null,
        lastWakeAt: null,
        lastSleepAt: null,
        lastError: null,
        reachedAt: null,
        reachedWith: null,
      };
      this.machines.set(machineId, p);
    }
    return p;
  }

  private configOf(machineId: string): MachineConfig | undefined {
    return machineId === LOCAL_MACHINE_ID ? undefined : this.deps.getConfig().machines[machineId];
  }

  /**
   * Mark a start preparing on the machine (it is in use: no sleep) until the returned function
   * is called. The caller calls it once its claim is taken (or it gave up).
   */
  hold(machineId: string): () => void {
    const p = this.get(machineId);
    p.holds++;
    this.update(machineId);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      p.holds--;
      this.update(machineId);
    };
  }

  private now(): number {
    return (this.deps.now ?? performance.now.bind(performance))();
  }

  /** Found answering now under config `m` (starts a REACH_TRUST_MS window), or null: not trusted. */
  private reached(p: MachinePower, m: MachineConfig | null): void {
    const trust = m !== null && trustsReach(m);
    p.reachedAt = trust ? this.now() : null;
    p.reachedWith = trust ? m : null;
  }

  private trusted(p: MachinePower, m: MachineConfig): boolean {
    return (
      p.state === 'awake' && p.reachedAt !== null && p.reachedWith === m && this.now() - p.reachedAt < REACH_TRUST_MS
    );
  }

  /**
   * What one probe's answer says about a machine that is not being woken: its state (and the
   * trust window) from the answer, and the error a start there fails with (null: it answered).
   */
  private settle(
    machineId: string,
    p: MachinePower,
    m: MachineConfig,
    r: ReachResult,
    record = true,
  ): MachineUnavailableError | null {
    if (r.ok) {
      if (record) {
        p.state = r.via === 'not checked' ? 'unknown' : 'awake';
        this.reached(p, r.via === 'not checked' ? null : m);
      }
      return null;
    }
    if (record) {
      this.reached(p, null);
      p.lastError = `${r.via}: ${r.detail}`;
      p.state = r.answered ? 'awake' : 'unreachable';
    }
    if (r.answered) {
      return new MachineUnavailableError(
        'unreachable',
        machineId,
        `machine '${machineId}' is up but unusable (${r.via}: ${r.detail}); not woken`,
        { via: r.via, detail: r.detail },
      );
    }
    return new MachineUnavailableError(
      'unreachable',
      machineId,
      `machine '${machineId}' is unreachable (${r.via}: ${r.detail}) and has no wake action`,
      { via: r.via, detail: r.detail },
    );
  }

  /**
   * Before a start on the machine: `ensureAwake`, except when the launch itself reaches the
   * machine over its SSH port (`launchUsesSshPort`: an `ssh` launcher) and nothing is left to
   * decide before it. That is a machine with no agent and no `wake` action, last seen awake or
   * not yet checked, whose probe would be a TCP connect to that same port. Its probe then runs
   * beside the launch instead of before it, and this returns the probe's `verdict`: null when the
   * machine answered, else the MachineUnavailableError `ensureAwake` would have thrown (the
   * launch, which connects to the same port, fails too; the runtime then moves on to the next
   * machine without spending retries). Otherwise it returns null once `ensureAwake` did. Why:
   * an awaited probe lets a burst of requests be read and queued before the launch (see
   * REACH_TRUST_MS); beside the launch, the burst is taken in while the SSH session is set up.
   */
  async checkBeforeLaunch(
    machineId: string,
    serviceId: string,
    signal: AbortSignal,
    launchUsesSshPort: boolean,
  ): Promise<{ verdict: Promise<MachineUnavailableError | null> } | null> {
    const m = this.configOf(machineId);
    if (!m) return null;
    const p = this.get(machineId);
    const deferrable =
      launchUsesSshPort &&
      m.agent === undefined &&
      m.wake === undefined &&
      m.ssh !== undefined &&
      p.sleeping === null &&
      p.waking === null &&
      (p.state === 'unknown' || p.state === 'awake');
    if (!deferrable) {
      await this.ensureAwake(machineId, serviceId, signal);
      return null;
    }
    if (this.trusted(p, m)) return null;
    // Wrapped: an async function returning the promise itself would wait for it. The probe
    // also ends with the gateway; a wake or sleep begun meanwhile (a reload) owns the state.
    const verdict = probeMachine(machineId, m, AbortSignal.any([signal, this.closing.signal])).then(
      (r) =>
        signal.aborted || this.closing.signal.aborted
          ? null
          : this.settle(machineId, p, m, r, !p.waking && !p.sleeping),
      () => null,
    );
    return { verdict };
  }

  /**
   * Make sure the machine answers before a service is started there: probe it; when it does
   * not answer, wake it (or join the wake in progress) and wait for it. Rejects with a
   * MachineUnavailableError (`unreachable`: no wake configured; `wake_failed`: the action failed
   * or the machine did not answer within wait_timeout_ms), or with `signal`'s reason.
   */
  async ensureAwake(machineId: string, serviceId: string, signal?: AbortSignal): Promise<void> {
    const m = this.configOf(machineId);
    if (!m) return;
    const p = this.get(machineId);
    // A sleep action in progress finishes first; then the machine is probed (and woken) afresh.
    if (p.sleeping) await raceSignal(p.sleeping, signal);
    if (p.waking) return raceSignal(p.waking, signal);
    if (this.trusted(p, m)) return;
    const r = await probeMachine(machineId, m, signal);
    signal?.throwIfAborted();
    if (r.ok) {
      // Unchecked machines are not claimed awake (nor left "asleep": a start is going there).
      if (!p.waking) this.settle(machineId, p, m, r);
      return;
    }
    this.reached(p, null);
    if (p.waking) return raceSignal(p.waking, signal);
    // Up but refusing (wrong agent token): a wake would change nothing. No wake action: nothing
    // to try. Either way the start moves on at once (settle gives the error for a failed probe).
    if (r.answered || !m.wake) throw this.settle(machineId, p, m, r);
    const wake = this.wake(machineId, m, m.wake, serviceId, r);
    p.waking = wake;
    void wake.then(
      () => {
        if (p.waking === wake) p.waking = null;
      },
      () => {
        if (p.waking === wake) p.waking = null;
      },
    );
    return raceSignal(wake, signal);
  }

  private async wake(
    machineId: string,
    m: MachineConfig,
    action: PowerActionConfig,
    serviceId: string,
    first: ReachResult,
  ): Promise<void> {
    const p = this.get(machineId);
    const began = Date.now();
    p.state = 'waking';
    this.reached(p, null);
    p.lastWakeAt = began;
    this.deps.log.info(
      { event_type: 'machine_waking', machine_id: machineId, service_id: serviceId, action: action.type },
      `waking machine '${machineId}' (${action.type}) for service '${serviceId}': ${first.via} ${first.detail}`,
    );
    const base = { action: action.type, waitTimeoutMs: action.wait_timeout_ms, forService: serviceId };
    const fail = (result: 'failed' | 'timeout', reason: string): never => {
      p.state = 'unreachable';
      p.lastError = reason;
      this.deps.bus.publish(
        'machine_wake',
        serviceId,
        { ...base, result, reason, durationMs: Date.now() - began },
        machineId,
      );
      throw new MachineUnavailableError('wake_failed', machineId, reason, { action: action.type, result });
    };
    let actionDetail: string;
    try {
      actionDetail = await this.runAction(machineId, m, action, this.closing.signal);
    } catch (err) {
      return fail('failed', `waking machine '${machineId}' (${action.type}) failed: ${message(err)}`);
    }
    const deadline = began + action.wait_timeout_ms;
    let last = first;
    for (;;) {
      if (this.closing.signal.aborted) return fail('failed', 'the gateway is shutting down');
      const r = await probeMachine(machineId, m, this.closing.signal);
      if (r.ok) break;
      last = r;
      const left = deadline - Date.now();
      if (left <= 0)
        return fail(
          'timeout',
          `machine '${machineId}' was woken (${action.type}) but did not answer within ${action.wait_timeout_ms} ms (wait_timeout_ms; ${last.via}: ${last.detail})`,
        );
      await sleep(Math.min(action.wait_interval_ms, left), undefined, { signal: this.closing.signal }).catch(() => {});
    }
    p.state = 'awake';
    this.reached(p, m);
    p.lastError = null;
    this.deps.bus.publish(
      'machine_wake',
      serviceId,
      { ...base, result: 'ok', detail: actionDetail, durationMs: Date.now() - began },
      machineId,
    );
  }

  /** Run a wake/sleep action; resolves with a short description of what it did. */
  private async runAction(
    machineId: string,
    m: MachineConfig,
    a: PowerActionConfig,
    signal: AbortSignal,
  ): Promise<string> {
    const vars = machineVars(machineId, m);
    switch (a.type) {
      case 'wol': {
        const address = a.address ?? WOL_DEFAULT_ADDRESS;
        const port = a.port ?? WOL_DEFAULT_PORT;
        await sendWol(a.mac ?? '', address, port);
        return `magic packet for ${a.mac} sent to ${address}:${port}`;
      }
      case 'command': {
        const cmd =
          typeof a.command === 'string'
            ? expandTemplate(a.command, vars)
            : (a.command ?? []).map((s) => expandTemplate(s, vars));
        await runLocalCommand(cmd, a.timeout_ms, signal);
        return 'command succeeded';
      }
      case 'ssh': {
        const on = a.machine ?? machineId;
        const cmd = expandTemplate(typeof a.command === 'string' ? a.command : (a.command ?? []).join(' '), vars);
        await runOnMachine(this.deps.getConfig(), on, cmd, {
          timeoutMs: a.timeout_ms,
          signal,
          check: true,
          what: 'power ssh command',
        });
        return `ssh command on ${on} succeeded`;
      }
      case 'http':
        return runHttpAction(a, vars, signal);
    }
  }

  /** Re-evaluate the machine's sleep timer (claims or holds changed). */
  update(machineId: string): void {
    const p = this.get(machineId);
    const inUse = this.deps.claimCount(machineId) + p.holds;
    if (inUse > 0) {
      p.used = true;
      p.idleSince = null;
      if (p.sleepTimer) clearTimeout(p.sleepTimer);
      p.sleepTimer = null;
      p.sleepDueAt = null;
      return;
    }
    p.idleSince ??= Date.now();
    const action = this.configOf(machineId)?.sleep;
    if (!action || !p.used || p.sleepTimer || this.closing.signal.aborted) return;
    p.sleepDueAt = Date.now() + action.idle_sleep_ms;
    p.sleepTimer = setTimeout(() => this.onSleepTimer(machineId), action.idle_sleep_ms);
    // The gateway's server keeps the process alive; a pending sleep alone should not.
    p.sleepTimer.unref();
  }

  private onSleepTimer(machineId: string): void {
    const p = this.get(machineId);
    p.sleepTimer = null;
    p.sleepDueAt = null;
    // Re-decide on the state now: a start may have begun since the timer was armed.
    if (this.deps.claimCount(machineId) + p.holds > 0 || p.waking || p.sleeping || this.closing.signal.aborted) return;
    const m = this.configOf(machineId);
    const action = m?.sleep;
    if (!m || !action) return;
    const began = Date.now();
    const idleMs = p.idleSince === null ? null : began - p.idleSince;
    // Not armed again until a service uses the machine again.
    p.used = false;
    p.state = 'going_to_sleep';
    this.reached(p, null);
    const task = this.runAction(machineId, m, action, this.closing.signal).then(
      (detail) => {
        p.state = 'asleep';
        p.lastSleepAt = Date.now();
        p.lastError = null;
        this.deps.bus.publish(
          'machine_sleep',
          null,
          { action: action.type, result: 'ok', detail, idleMs, durationMs: Date.now() - began },
          machineId,
        );
      },
      (err: unknown) => {
        const reason = `sleep action (${action.type}) for machine '${machineId}' failed: ${message(err)}`;
        p.state = 'unknown';
        p.lastError = reason;
        this.deps.bus.publish(
          'machine_sleep',
          null,
          { action: action.type, result: 'failed', reason, idleMs, durationMs: Date.now() - began },
          machineId,
        );
      },
    );
    p.sleeping = task;
    void task.finally(() => {
      if (p.sleeping === task) p.sleeping = null;
    });
  }

  describe(machineId: string): PowerInfo {
    const m = this.configOf(machineId);
    const p = this.machines.get(machineId);
    return {
      state: machineId === LOCAL_MACHINE_ID ? 'always_on' : (p?.state ?? 'unknown'),
      wake: m?.wake?.type ?? null,
      sleep: m?.sleep?.type ?? null,
      idleSleepMs: m?.sleep?.idle_sleep_ms ?? null,
      sleepDueAt: iso(p?.sleepDueAt ?? null),
      lastWakeAt: iso(p?.lastWakeAt ?? null),
      lastSleepAt: iso(p?.lastSleepAt ?? null),
      lastError: p?.lastError ?? null,
    };
  }

  /** Disarm every timer, abandon waits, let running sleep actions finish. */
  async close(): Promise<void> {
    this.closing.abort(new Error('the gateway is shutting down'));
    const running: Promise<void>[] = [];
    for (const p of this.machines.values()) {
      if (p.sleepTimer) clearTimeout(p.sleepTimer);
      p.sleepTimer = null;
      p.sleepDueAt = null;
      if (p.sleeping) running.push(p.sleeping);
      if (p.waking) running.push(p.waking.catch(() => {}));
    }
    await Promise.all(running);
  }
}
