/**
 * Placement seam (SPEC §6): which machines a service may start on, in order, and what must
 * happen on a machine before a start there. The runtime tries the candidates in order (each
 * with its retries); it calls `prepare` before the attempts on a machine and holds the claim
 * it returns until the service is cold again.
 *
 * The lifecycle (services/) defines this seam and receives an implementation; it never imports
 * machines/. The implementation with placement rules, capacity and power management is
 * src/machines/machine-placement.ts, built by the composition root (src/main.ts) and passed to
 * the ServiceRegistry; `localPlacement` (everything on the gateway's own machine, nothing to
 * prepare) remains for unit tests.
 */
import { LOCAL_MACHINE_ID, placedMachine } from '../config/machine-order.ts';
import type { Config } from '../config/schema.ts';
import type { PlacedMachine, TemplateVars } from '../launchers/types.ts';

export { LOCAL_MACHINE_ID };

export type UnavailableKind =
  /** Its SSH port / wait_url does not answer and it has no `wake`. */
  | 'unreachable'
  /** The wake action failed, or the machine did not answer within `wait_timeout_ms`. */
  | 'wake_failed'
  /** The service's `requires` does not fit, even after stopping idle services. */
  | 'no_capacity';

/**
 * The seam's error: why a machine could not take a start (SPEC §6), thrown by `prepare`. The
 * runtime records it like a failed attempt (machine, reason, `stage` = `kind`) and moves to the
 * next machine at once, without spending the service's `retry_count` on a machine that cannot
 * take it.
 */
export class MachineUnavailableError extends Error {
  constructor(
    readonly kind: UnavailableKind,
    readonly machineId: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'MachineUnavailableError';
  }
}

/** Capacity (and "this machine is in use") held by one service; released exactly once when it is cold. */
export interface PlacementClaim {
  /** Idempotent. */
  release(): void;
  /**
   * The machine's reachability check when it still runs beside the launch (the launch reaches
   * the machine the same way, so it was not awaited first): resolves with the
   * MachineUnavailableError `prepare` would have thrown, or null when the machine answered.
   * Read after a failed attempt: the runtime then moves on to the next machine at once.
   */
  unreachable?: Promise<MachineUnavailableError | null>;
}

export interface Placement {
  /** Machines to try for a start, best first. Never empty. */
  candidates(serviceId: string): PlacedMachine[];
  /**
   * Before the attempts on `machine`: make it ready (awake, room reserved — stopping idle
   * services there if needed). Rejects with a MachineUnavailableError (above)
   * when the machine cannot take the service (unreachable, wake failed, no capacity): the
   * runtime then moves to the next machine without spending retries here. Rejects with the
   * signal's reason when the start is abandoned (then nothing stays reserved). Absent = nothing
   * to prepare.
   */
  prepare?(serviceId: string, machine: PlacedMachine, signal: AbortSignal): Promise<PlacementClaim>;
  /** A service found already running on `machine` (re-adoption) takes its claim without checks. */
  adopt?(serviceId: string, machine: PlacedMachine): PlacementClaim;
  /** Timers and waits end (gateway shutdown). */
  close?(): Promise<void>;
}

export function localMachine(config: Config): PlacedMachine {
  return placedMachine(config, LOCAL_MACHINE_ID);
}

export function localPlacement(getConfig: () => Config): Placement {
  return { candidates: () => [localMachine(getConfig())] };
}

/**
 * The template variables for a service on a machine. `{port}` is the port of base_url (its
 * explicit port, else 80/443 by scheme), read after `{host}`/`{machine}` are substituted.
 */
export function templateVars(serviceId: string, baseUrl: string, machine: PlacedMachine): TemplateVars {
  const sample = baseUrl
    .replace(/\{host\}/g, machine.host)
    .replace(/\{machine\}/g, machine.id)
    .replace(/\{port\}/g, '');
  let port = '';
  try {
    const u = new URL(sample);
    port = u.port || (u.protocol === 'https:' ? '443' : '80');
  } catch {
    // Validated by the config schema; an unparsable URL leaves {port} empty.
  }
  return { host: machine.host, machine: machine.id, port, service: serviceId };
}
