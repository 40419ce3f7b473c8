/**
 * The dispatcher's shared byte budget (SPEC §8, `server.dispatch_buffer_mb`): a `POST
 * /v1/requests` body is held whole in memory from the moment it is read until its request ends,
 * and a request for a cold service may wait in the queue for minutes. Without a bound, 40 bodies
 * of 10 MiB for a cold service hold ~1 GB. Every dispatch takes its body's bytes from one budget
 * per gateway before the body is read (its Content-Length; without one, the body limit, the
 * most it can hold) and gives them back when its response closes, whatever way the request
 * ended (answered, refused, timed out, client gone). A request that would exceed the budget is
 * answered 503 at once, before its body is read.
 */
import { HestiaError } from '../errors.ts';
import type { GatewayContext } from '../gateway-context.ts';

const MIB = 1024 * 1024;

class ByteBudget {
  used = 0;
}

/** One budget per gateway (its context); the limit is read from the current config on each take. */
const budgets = new WeakMap<GatewayContext, ByteBudget>();

function budgetOf(ctx: GatewayContext): ByteBudget {
  let b = budgets.get(ctx);
  if (b === undefined) {
    b = new ByteBudget();
    budgets.set(ctx, b);
  }
  return b;
}

/** Bytes of dispatcher bodies currently held (for tests and diagnostics): 0 once traffic ended. */
export function dispatchBufferInUse(ctx: GatewayContext): number {
  return budgets.get(ctx)?.used ?? 0;
}

/**
 * Take `bytes` from the budget, or refuse with 503 HESTIA_BUFFER_FULL (Retry-After) when they
 * would exceed it. The returned function gives them back; calling it more than once is harmless.
 */
export function takeDispatchBuffer(ctx: GatewayContext, bytes: number): (() => void) | HestiaError {
  const budget = budgetOf(ctx);
  const limit = ctx.config.server.dispatch_buffer_mb * MIB;
  if (budget.used + bytes > limit)
    return new HestiaError(
      'HESTIA_BUFFER_FULL',
      `the dispatcher holds too many request bodies (server.dispatch_buffer_mb = ${ctx.config.server.dispatch_buffer_mb}); retry later`,
      { limitBytes: limit },
      { 'retry-after': '1' },
    );
  budget.used += bytes;
  let given = false;
  return () => {
    if (given) return;
    given = true;
    budget.used -= bytes;
  };
}
