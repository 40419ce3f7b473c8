/**
 * Lifecycle endpoints (SPEC §2):
 * - `GET /v1/services` → `{services: [status, …]}`. The original had no list endpoint; the
 *   envelope matches `/v1/machines` (`{machines: […]}`) and leaves room for more fields.
 *   It does not probe cold services (a dashboard polls it; a probe per cold service could cost
 *   up to a second each time): the per-service status does.
 * - `GET /v1/services/{id}/status` → the status object, after the bounded probe-and-adopt of
 *   a cold service with a health_url.
 * - `POST /v1/services/{id}/start` → 202 `{message, serviceId}` | 409.
 * - `POST /v1/services/{id}/stop` → 202 `{message, serviceId}` | 409.
 * Unknown id → 404 with the list of known services. While shutting down, start → 503.
 */
import type { FastifyInstance } from 'fastify';
import { HestiaError, unknownServiceError } from '../../errors.ts';
import type { GatewayContext } from '../../gateway-context.ts';
import { shuttingDownError } from '../../services/errors.ts';
import type { ServiceHandle } from '../../services/types.ts';

interface IdParams {
  id: string;
}

export async function registerServiceRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const lookup = (id: string): ServiceHandle => {
    const svc = ctx.services.get(id);
    if (!svc) throw unknownServiceError(id, ctx.services.ids());
    return svc;
  };

  app.get('/v1/services', async () => ({
    services: ctx.services.ids().map((id) => lookup(id).status()),
  }));

  app.get<{ Params: IdParams }>('/v1/services/:id/status', async (req) => {
    const svc = lookup(req.params.id);
    await svc.probe?.();
    return svc.status();
  });

  app.post<{ Params: IdParams }>('/v1/services/:id/start', async (req, reply) => {
    const svc = lookup(req.params.id);
    if (ctx.shuttingDown) throw shuttingDownError(svc.id);
    if (!svc.start('api')) {
      throw new HestiaError('HESTIA_CONFLICT', `service '${svc.id}' is already ${svc.state}`, {
        serviceId: svc.id,
        state: svc.state,
      });
    }
    return reply.status(202).send({ message: `starting service '${svc.id}'`, serviceId: svc.id });
  });

  app.post<{ Params: IdParams }>('/v1/services/:id/stop', async (req, reply) => {
    const svc = lookup(req.params.id);
    if (!svc.stop('api')) {
      throw new HestiaError('HESTIA_CONFLICT', `service '${svc.id}' is already ${svc.state}`, {
        serviceId: svc.id,
        state: svc.state,
      });
    }
    return reply.status(202).send({ message: `stopping service '${svc.id}'`, serviceId: svc.id });
  });
}
