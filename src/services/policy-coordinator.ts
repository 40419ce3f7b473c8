/**
 * The one place where cross-service lifecycle rules are decided (docs/lifecycle-policies.md,
 * services/DESIGN.md "Lifecycle policies"): `preload`, `keep_warm` windows, `depends_on`,
 * `group`. Capacity (src/machines/) asks the runtimes, which ask this coordinator's
 * `holdReason`, so a held service is never an eviction candidate either.
 *
 * It never writes a service's state. It calls the runtimes' public operations (PolicyMember:
 * acquire, policyStart, stopForDependency, recheckIdle), and each runtime decides on its own
 * current state, synchronously, as for any request. Its reactions to transitions run in a
 * microtask after the transition, never inside it.
 *
 * Why there are no deadlocks: waits only ever go *down* the dependency graph (a start awaits
 * its dependencies' readiness; a stop awaits its dependents' stops), the graph is acyclic
 * (a cycle is a config error), and a group start only *begins* the other members' starts
 * (never awaits them). Two services starting the same dependency at once join its one start.
 */
import type { Config } from '../config/schema.ts';
import type { Logger } from '../observability/logger.ts';
import { DependencyGraph } from './dependency-graph.ts';
import { KeepWarmSchedule } from './keep-warm-schedule.ts';
import { type PolicyClock, realClock } from './policy-clock.ts';
import type { PolicyHooks, PolicyMember } from './policy-hooks.ts';
import type { TransitionCause } from './state-machine.ts';
import type { PolicyStatus, ServiceState } from './types.ts';

export interface PolicyCoordinatorOptions {
  config: Config;
  /** The runtime of a configured service (undefined for an unknown or removed id). */
  member(id: string): PolicyMember | undefined;
  log: Logger;
  clock?: PolicyClock | undefined;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A `depends_on` service could not be started: the dependent's start fails with this. */
export class DependencyFailedError extends Error {
  constructor(
    readonly dependency: string,
    reason: string,
  ) {
    super(`dependency '${dependency}' failed to start: ${reason}`);
    this.name = 'DependencyFailedError';
  }
}

export class PolicyCoordinator implements PolicyHooks {
  private config: Config;
  private graph: DependencyGraph;
  private readonly keepWarm: KeepWarmSchedule;
  private readonly clock: PolicyClock;
  private readonly log: Logger;
  private booted = false;
  private closed = false;

  constructor(private readonly opts: PolicyCoordinatorOptions) {
    this.config = opts.config;
    this.graph = new DependencyGraph(opts.config);
    this.clock = opts.clock ?? realClock;
    this.log = opts.log;
    this.keepWarm = new KeepWarmSchedule(this.clock, {
      entered: (id, window) => this.startFor(id, `keep-warm window '${window}'`),
      left: (id) => this.opts.member(id)?.recheckIdle(),
    });
  }

  // ---- gateway lifecycle (driven by the registry) ------------------------------------------

  /** After re-adoption at gateway start: preload services, and start the keep-warm clock. */
  boot(): void {
    if (this.booted || this.closed) return;
    this.booted = true;
    for (const [id, svc] of Object.entries(this.config.services)) if (svc.preload) this.startFor(id, 'preload');
    this.keepWarm.set(this.windowsOf(this.config));
  }

  /**
   * A reloaded config: the graph and groups are rebuilt, services the reload added (or newly
   * marked `preload`) start, changed keep-warm windows are re-read, and every hot service's idle
   * clock is re-armed (a hold may have ended with the new rules).
   */
  reconfigure(config: Config): void {
    const prev = this.config;
    this.config = config;
    this.graph = new DependencyGraph(config);
    if (!this.booted || this.closed) return;
    for (const [id, svc] of Object.entries(config.services))
      if (svc.preload && !prev.services[id]?.preload) this.startFor(id, 'preload');
    this.keepWarm.set(this.windowsOf(config));
    for (const id of Object.keys(config.services)) this.opts.member(id)?.recheckIdle();
  }

  /** Gateway shutdown: no more policy starts, the keep-warm timer is cancelled. */
  close(): void {
    this.closed = true;
    this.keepWarm.close();
  }

  // ---- PolicyHooks ---------------------------------------------------------------------

  beforeStart(id: string, signal: AbortSignal): Promise<void> | null {
    const deps = this.graph.dependsOn(id);
    if (deps.length === 0) return null;
    return this.dependenciesReady(deps, signal);
  }

  private async dependenciesReady(deps: readonly string[], signal: AbortSignal): Promise<void> {
    await Promise.all(
      deps.map(async (dep) => {
        const m = this.opts.member(dep);
        if (!m) throw new DependencyFailedError(dep, 'it is not configured');
        try {
          // Join (or begin) the dependency's one start like any request would; the lease is only
          // proof of readiness. Its start waits for its own dependencies first: topological order.
          const lease = await m.acquire({ signal });
          lease.release();
        } catch (err) {
          if (signal.aborted) throw signal.reason;
          throw new DependencyFailedError(dep, message(err));
        }
      }),
    );
  }

  holdReason(id: string): string | null {
    const window = this.keepWarm.activeWindow(id);
    if (window !== null) return `keep-warm window '${window}'`;
    for (const d of this.graph.dependents(id)) {
      const state = this.opts.member(d)?.state;
      if (state !== undefined && state !== 'cold') return `dependent '${d}' is ${state}`;
    }
    const now = Date.now();
    for (const s of this.graph.siblings(id)) {
      const m = this.opts.member(s);
      if (m && (m.state === 'starting' || (m.state === 'hot' && !m.idleExpired(now))))
        return `group '${this.graph.group(id)}': member '${s}' is in use`;
    }
    return null;
  }

  async stopDependents(id: string, why: string): Promise<void> {
    const running = this.graph.dependents(id).flatMap((d) => {
      const m = this.opts.member(d);
      return m && m.state !== 'cold' ? [m] : [];
    });
    await Promise.all(
      running.map((m) =>
        m.stopForDependency(id, why).catch((err: unknown) => {
          this.log.warn({ event_type: 'policy_error', service_id: m.id, err: message(err) }, 'dependent stop failed');
        }),
      ),
    );
  }

  transitioned(id: string, from: ServiceState, to: ServiceState, cause: TransitionCause): void {
    if (this.closed) return;
    queueMicrotask(() => this.react(id, from, to, cause));
  }

  status(id: string): PolicyStatus {
    const svc = this.config.services[id];
    const group = this.graph.group(id);
    return {
      preload: svc?.preload ?? false,
      keepWarm: this.keepWarm.state(id),
      dependsOn: [...this.graph.dependsOn(id)],
      dependents: [...this.graph.dependents(id)],
      group,
      groupMembers: group === null ? [] : [...this.graph.members(group)],
      stopMode: svc?.stop_mode ?? 'stop',
      idleHold: this.holdReason(id),
    };
  }

  // ---- reactions -----------------------------------------------------------------------

  private react(id: string, from: ServiceState, to: ServiceState, cause: TransitionCause): void {
    if (this.closed) return;
    // A group starts together: the first member to start begins the others' starts.
    if (from === 'cold' && to === 'starting') {
      const group = this.graph.group(id);
      for (const s of this.graph.siblings(id)) this.startFor(s, `group '${group}': '${id}' is starting`);
    }
    // A dependency that crashed takes its dependents down (each stops its own dependents first).
    if (to === 'cold' && cause === 'crashed') void this.stopDependents(id, `'${id}' crashed`);
    // Holds may have ended: a stopped dependent frees its dependencies, a stopped member its group.
    if (to === 'stopping' || to === 'cold') {
      for (const d of this.graph.dependsOn(id)) this.opts.member(d)?.recheckIdle();
      for (const s of this.graph.siblings(id)) this.opts.member(s)?.recheckIdle();
    }
  }

  private startFor(id: string, reason: string): void {
    if (this.closed) return;
    const m = this.opts.member(id);
    if (m?.state === 'cold' && m.policyStart(reason))
      this.log.info({ event_type: 'policy_start', service_id: id, reason }, `starting '${id}' (${reason})`);
  }

  private windowsOf(config: Config): Record<string, readonly string[]> {
    return Object.fromEntries(Object.entries(config.services).map(([id, svc]) => [id, svc.keep_warm]));
  }
}
