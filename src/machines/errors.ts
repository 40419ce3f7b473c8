/**
 * Why a machine could not take a start (SPEC §6). The runtime records these like a failed
 * attempt (machine, reason) and moves to the next machine at once, without spending the
 * service's `retry_count` on a machine that cannot take it.
 */

export type UnavailableKind =
  /** Its SSH port / wait_url does not answer and it has no `wake`. */
  | 'unreachable'
  /** The wake action failed, or the machine did not answer within `wait_timeout_ms`. */
  | 'wake_failed'
  /** The service's `requires` does not fit, even after stopping idle services. */
  | 'no_capacity';

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
