/**
 * `GET /v1/events?service=&type=&limit=` (SPEC §2): lifecycle events from the store, newest
 * first, as `{events: [{id, ts, time, type, serviceId, machineId, details}]}`. `limit` defaults
 * to 100 and is capped at 1000. An unknown `service` is a 404 like everywhere else.
 */
import type { FastifyInstance } from 'fastify';
import { HestiaError, unknownServiceError } from '../../errors.ts';
import type { GatewayContext } from '../context.ts';

export const EVENTS_DEFAULT_LIMIT = 100;
export const EVENTS_MAX_LIMIT = 1000;

interface EventsQuery {
  service?: string;
  type?: string;
  limit?: string;
}

export async function registerEventRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  app.get<{ Querystring: EventsQuery }>('/v1/events', async (req) => {
    const { service, type, limit } = req.query;
    let n = EVENTS_DEFAULT_LIMIT;
    if (limit !== undefined) {
      n = Number(limit);
      if (!Number.isInteger(n) || n < 1) {
        throw new HestiaError('HESTIA_BAD_REQUEST', `limit must be a whole number >= 1, got ${JSON.stringify(limit)}`, {
          field: 'limit',
        });
      }
      n = Math.min(n, EVENTS_MAX_LIMIT);
    }
    if (service !== undefined && service !== '' && !ctx.services.get(service)) {
      throw unknownServiceError(service, ctx.services.ids());
    }
    const events = ctx.store.queryEvents({ serviceId: service || undefined, type: type || undefined, limit: n });
    return {
      events: events.map((e) => ({
        id: e.id,
        ts: e.ts,
        time: new Date(e.ts).toISOString(),
        type: e.type,
        serviceId: e.serviceId,
        machineId: e.machineId,
        details: e.details,
      })),
    };
  });
}
