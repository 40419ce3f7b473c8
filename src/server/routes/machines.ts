/**
 * `GET /v1/machines` (SPEC §2, §6) → `{machines: [{id, host, tags, capacity, used, free,
 * allocation: [{serviceId, requires, state, since}], power}]}`: every configured machine plus
 * the gateway's own (`local`), what each has, what is allocated there and to whom (starts that
 * reserved included), and its power state (src/machines/power.ts).
 */
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../../gateway-context.ts';

export async function registerMachineRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  app.get('/v1/machines', async () => ({ machines: ctx.machines?.list() ?? [] }));
}
