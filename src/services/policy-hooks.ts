/**
 * The seam between one service's lifecycle (ServiceRuntime) and the cross-service policies
 * (PolicyCoordinator, policy-coordinator.ts): what the runtime asks the coordinator
 * (`PolicyHooks`), and what the coordinator may ask of a runtime (`PolicyMember`). The
 * coordinator never changes a service's state: it calls these public operations, and each
 * runtime remains the only writer of its own state (services/DESIGN.md, "Lifecycle policies").
 */
import type { ServiceConfig } from '../config/schema.ts';
import type { TransitionCause } from './state-machine.ts';
import type { AcquireOptions, Lease, PolicyStatus, ServiceState } from './types.ts';

export interface PolicyHooks {
  /**
   * Before a start launches (or resumes) anything: every `depends_on` service started and ready.
   * Rejects with an error naming the dependency that failed (or the start's abort reason).
   * Null (decided synchronously) when `id` has no dependencies: the start goes on in the same
   * turn, exactly as without policies.
   */
  beforeStart(id: string, signal: AbortSignal): Promise<void> | null;
  /** Why a policy keeps `id` up right now (keep-warm, a dependent not cold, a group member in use), or null. */
  holdReason(id: string): string | null;
  /** Stop `id`'s dependents (each stops its own first); resolves when they are cold. Never rejects. */
  stopDependents(id: string, why: string): Promise<void>;
  /** Told after every transition of `id`; reacts later (never inside the caller's transition). */
  transitioned(id: string, from: ServiceState, to: ServiceState, cause: TransitionCause): void;
  /** The policy facts of `id` for its status object. */
  status(id: string): PolicyStatus;
}

export interface PolicyMember {
  readonly id: string;
  readonly state: ServiceState;
  readonly config: ServiceConfig;
  acquire(opts?: AcquireOptions): Promise<Lease>;
  /** Begin a start for a policy (preload, keep-warm, group); false when not cold (or shutting down). */
  policyStart(reason: string): boolean;
  /** Stop because `dependency` is stopping or crashed; resolves when cold. */
  stopForDependency(dependency: string, why: string): Promise<void>;
  /** A hold may have ended: re-arm the idle clock from the last use (a passed deadline fires now). */
  recheckIdle(): void;
  /** Hot, nothing in flight or queued, and unused for at least its idle_timeout_ms (> 0). */
  idleExpired(now: number): boolean;
}
