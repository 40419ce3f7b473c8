/**
 * The error of a remote step: a launcher's start or stop, an ssh command, a templated HTTP
 * call, a wake or sleep action. The message is what a person needs to fix it; `details` go
 * into the `service_start_failed` / machine events.
 */
export class LaunchError extends Error {
  readonly details: Record<string, unknown>;
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'LaunchError';
    this.details = details;
  }
}
