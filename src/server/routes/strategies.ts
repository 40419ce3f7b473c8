import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../../gateway-context.ts';

/**
 * `GET /v1/strategies` (SPEC §2): the loaded strategies (`{name, version, features}`, plus
 * `source`: `builtin` or the plugin file) and every service's `{strategy, instances, routing}`
 * as configured (`strategy`/`routing` null when absent). Each instance also carries its current
 * health (`healthy`, `cooldown_remaining_ms`), so an operator can see which one is being skipped.
 */
export async function registerStrategyRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  app.get('/v1/strategies', async () => ctx.routing.describe());
}
