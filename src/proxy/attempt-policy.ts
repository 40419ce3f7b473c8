/**
 * The attempt policy (SPEC §4, docs/strategies.md), written once for every way a request leaves
 * the gateway: the undici dispatch of proxied and dispatched requests (forward.ts) and the
 * WebSocket tunnel's upgrade request (websocket.ts). Given how an attempt failed and what this
 * request has tried so far, it answers: try again (after N ms), go to the fallback, or fail.
 *
 * - Only a retriable failure (failures.ts `isRetriable`: a connect failure, or a reset before
 *   any body byte was streamed) is tried again; anything else fails at once.
 * - Nothing is tried after the fallback: its failure is the answer.
 * - With a routing strategy, the failed instance was reported and the strategy asked again: an
 *   instance this request has not tried yet is tried at once and does not count against
 *   `retry_count` (nginx's `proxy_next_upstream`). When the strategy has nothing left
 *   (HESTIA_NO_HEALTHY_INSTANCE) no plain retry is made: the fallback, if any, else fail.
 * - Otherwise up to `retry_count` attempts in all (at least one), `retry_delay_ms` apart, then
 *   `fallback_url` once, then fail.
 *
 * Pure: the caller carries out the decision (timers, targets, events, the error answered).
 * Only failures reach it, so it is off the hot path.
 */
import type { FailureKind } from './failures.ts';
import { isRetriable } from './failures.ts';

/** What the policy needs to know about the request whose attempt just failed. */
export interface AttemptState {
  /** Attempts made so far, the failed one included. */
  readonly attempts: number;
  /** The failed attempt went to the fallback. */
  readonly onFallback: boolean;
  /** Part of a streamed request body was sent: it cannot be replayed. */
  readonly bodyStarted: boolean;
}

/** Routing's part (null for a service without a strategy, and for WebSocket upgrades). */
export interface Failover {
  /**
   * Report the failed instance and ask the strategy again; true when it offers an instance this
   * request has not tried yet. Called only when another attempt is allowed at all.
   */
  reroute(): boolean;
  /** After reroute(): the strategy found no instance left. */
  readonly exhausted: boolean;
}

export interface RetryConfig {
  readonly retry_count: number;
  readonly retry_delay_ms: number;
}

export type AttemptDecision =
  | { readonly action: 'retry'; readonly delayMs: number; readonly failover: boolean }
  | { readonly action: 'fallback'; readonly url: string }
  | { readonly action: 'fail' };

const FAIL: AttemptDecision = { action: 'fail' };

/** The next step after a failed attempt (see the module comment). */
export function nextAttempt(
  kind: FailureKind,
  state: AttemptState,
  cfg: RetryConfig,
  fallbackUrl: string | null,
  failover: Failover | null,
): AttemptDecision {
  if (!isRetriable(kind, state.bodyStarted) || state.onFallback) return FAIL;
  if (failover?.reroute() === true) return { action: 'retry', delayMs: 0, failover: true };
  const exhausted = failover?.exhausted === true;
  if (!exhausted && state.attempts < Math.max(1, cfg.retry_count))
    return { action: 'retry', delayMs: cfg.retry_delay_ms, failover: false };
  if (fallbackUrl !== null) return { action: 'fallback', url: fallbackUrl };
  return FAIL;
}
