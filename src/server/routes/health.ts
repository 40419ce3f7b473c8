import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../../gateway-context.ts';

/** `GET /healthz`: 200 as soon as the server listens (SPEC §1). */
export async function registerHealthRoutes(app: FastifyInstance, _ctx: GatewayContext): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));
}
