/**
 * Lifecycle events (SPEC §2, §9):
 * - `GET /v1/events?service=&type=&limit=`: events from the store, newest first, as
 *   `{events: [{id, ts, time, type, serviceId, machineId, details}]}`. `limit` defaults to 100
 *   and is capped at 1000. An unknown `service` is a 404 like everywhere else.
 * - `GET /v1/events/stream?service=&type=&since=`: the same objects live, as Server-Sent Events
 *   (format and replay rules in observability/event-stream.ts). Auth: like every `/v1` route (an
 *   API key, or the dashboard session; a key scoped to some services is refused, as for
 *   `/v1/events`). At most MAX_CLIENTS streams at once and MAX_CLIENTS_PER_OWNER per owner
 *   (the API key, or the dashboard user; with auth off, the client address, IPv6 by /64);
 *   further ones get 429.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bucketOf } from '../../auth/rate-limit.ts';
import { HestiaError, unknownServiceError } from '../../errors.ts';
import type { GatewayContext } from '../../gateway-context.ts';
import { apiEvent, type EventHub, REPLAY_MAX } from '../../observability/event-stream.ts';

export const EVENTS_DEFAULT_LIMIT = 100;
export const EVENTS_MAX_LIMIT = 1000;

interface EventsQuery {
  service?: string;
  type?: string;
  limit?: string;
}

interface StreamQuery {
  service?: string;
  type?: string;
  since?: string;
}

/** Whose stream this is, for the per-owner cap: the key or dashboard user, else the address. */
export function streamOwner(req: FastifyRequest, ctx: GatewayContext): string {
  const who = req.hestiaAuth;
  if (who?.ok) return who.via === 'session' ? `user:${who.keyName}` : `key:${who.keyName}`;
  return `addr:${bucketOf(ctx.auth.clientAddress(req.headers, req.socket.remoteAddress))}`;
}

export async function registerEventRoutes(app: FastifyInstance, ctx: GatewayContext, hub: EventHub): Promise<void> {
  const checkService = (service: string | undefined): string | undefined => {
    if (service === undefined || service === '') return undefined;
    if (!ctx.services.get(service)) throw unknownServiceError(service, ctx.services.ids());
    return service;
  };

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
    const serviceId = checkService(service);
    const events = ctx.store.queryEvents({ serviceId, type: type || undefined, limit: n });
    return { events: events.map((e) => apiEvent(e, e.id)) };
  });

  app.get<{ Querystring: StreamQuery }>('/v1/events/stream', async (req, reply) => {
    const { service, type, since } = req.query;
    const serviceId = checkService(service);
    const filter = { serviceId, type: type || undefined };
    // EventSource sends Last-Event-ID when it reconnects; `since` is the same for other clients.
    // A reconnect's Last-Event-ID wins over the `since` of the URL it was opened with (which is
    // older: replaying from it would repeat what the client already has).
    const raw = req.headers['last-event-id'] ?? since;
    let after: number | null = null;
    if (raw !== undefined && raw !== '') {
      after = Number(raw);
      if (!Number.isInteger(after) || after < 0) {
        throw new HestiaError('HESTIA_BAD_REQUEST', `since must be an event id, got ${JSON.stringify(raw)}`, {
          field: 'since',
        });
      }
    }
    // Fastify answers HEAD with the GET handler: say what a GET would be, without opening a stream.
    if (req.method === 'HEAD') return reply.header('content-type', 'text/event-stream; charset=utf-8').send();
    const owner = streamOwner(req, ctx);
    const room = hub.checkRoom(owner);
    if (!room.ok) {
      const message =
        room.reason === 'owner'
          ? `too many event streams open for this ${owner.startsWith('addr:') ? 'address' : owner.startsWith('user:') ? 'user' : 'API key'} (at most ${room.limit}); close one first`
          : 'too many event streams are open';
      throw new HestiaError('HESTIA_TOO_MANY_REQUESTS', message, { limit: room.limit }, { 'retry-after': '5' });
    }
    const replay =
      after === null
        ? []
        : ctx.store
            .queryEvents({ ...filter, limit: REPLAY_MAX })
            .filter((e) => e.id > after)
            .reverse()
            .map((e) => apiEvent(e, e.id));
    // From here on the response is ours, not Fastify's (it never ends by itself).
    reply.hijack();
    hub.open(req.raw, reply.raw, filter, replay, owner);
  });
}
