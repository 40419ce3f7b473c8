/**
 * The HTTP server: one node:http server whose requests are split at the door.
 * `/services/…` (and WebSocket upgrades) go straight to the proxy, which is the hot path and
 * must not pay for a router, hooks or body parsing; so do the model endpoints (`POST
 * /v1/chat/completions`, `/api/chat`, …: config/model-endpoints.ts, proxy/model-door.ts); everything else (/v1, /metrics, /healthz,
 * /ui) is the control plane on Fastify.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { modelEndpoint } from '../config/model-endpoints.ts';
import { errorBody, HestiaError } from '../errors.ts';
import type { GatewayContext } from '../gateway-context.ts';
import { EventHub } from '../observability/event-stream.ts';
import { GatewayMetrics } from '../observability/metrics.ts';
import { RequestTimeline } from '../observability/request-timeline.ts';
import type { ProxyHandler } from '../proxy/handler.ts';
import { registerDashboard } from '../ui/routes.ts';
import { registerAuth } from './control-plane-auth.ts';
import { FrontDoors } from './doors.ts';
import {
  hardenServer,
  isWebSocketUpgrade,
  jsonTooDeep,
  MAX_JSON_DEPTH,
  malformedHead,
  rawErrorResponse,
  refuseMalformed,
  SERVER_OPTIONS,
  serveAsPlainHttp,
} from './http-hygiene.ts';
import { registerDashboardDataRoutes } from './routes/dashboard-data.ts';
import { registerEventRoutes } from './routes/events.ts';
import { registerHealthRoutes } from './routes/health.ts';
import { registerLogRoutes } from './routes/logs.ts';
import { registerMachineRoutes } from './routes/machines.ts';
import { registerMetricsRoutes } from './routes/metrics.ts';
import { registerModelRoutes } from './routes/models.ts';
import { registerRequestRoutes } from './routes/requests.ts';
import { registerServiceRoutes } from './routes/services.ts';
import { registerStrategyRoutes } from './routes/strategies.ts';

export interface HttpApp {
  server: Server;
  fastify: FastifyInstance;
  /** Host doors and the Host/Origin checks of the main listener; the port doors' listeners use it too (doors.ts). */
  front: FrontDoors;
}

/** `/services` and everything under `/services/` is the proxy's; all else is Fastify's. */
export function isProxyPath(url: string | undefined): boolean {
  return url === '/services' || url?.startsWith('/services/') === true;
}

/** What the metrics, event-stream and dashboard routes read; main.ts builds and feeds them. */
export interface Observability {
  metrics: GatewayMetrics;
  events: EventHub;
  /** Per-service request timelines and cold starts for the dashboard (absent: one fed by the bus only). */
  timeline?: RequestTimeline;
}

/**
 * Without `obs` (tests that build their own context), metrics and the event stream are fed from
 * `ctx.bus` here, with no proxy observer and no store ids on streamed events.
 */
export async function buildHttpApp(ctx: GatewayContext, proxy: ProxyHandler, obs?: Observability): Promise<HttpApp> {
  if (obs === undefined) {
    const metrics = new GatewayMetrics({ services: () => ctx.services, authMetrics: () => ctx.auth.metrics() });
    const events = new EventHub();
    ctx.bus.on('event', (ev) => {
      metrics.onEvent(ev);
      events.publish(ev, null);
    });
    obs = { metrics, events };
  }
  const timeline = obs.timeline ?? new RequestTimeline();
  if (obs.timeline === undefined) ctx.bus.on('event', (ev) => timeline.onEvent(ev));
  let server: Server | undefined;
  const front = new FrontDoors(ctx, proxy);
  const fastify = Fastify({
    logger: false,
    // Fastify's own request logging is off: the gateway logs one line per request itself.
    serverFactory: (handler) => {
      const s = createServer(SERVER_OPTIONS, (req: IncomingMessage, res: ServerResponse) => {
        if (refuseMalformed(req, res)) return;
        if (front.onRequest(req, res)) return; // a host door, or refused (doors.ts)
        if (isProxyPath(req.url)) {
          proxy.handleRequest(req, res);
          return;
        }
        const model = req.method === 'POST' ? modelEndpoint(req.url) : undefined;
        if (model !== undefined) proxy.handleModelRequest(model, req, res);
        else handler(req, res);
      });
      hardenServer(s, ctx.config.server.request_idle_timeout_ms);
      // Every WebSocket upgrade goes to a door (doors.ts) or the proxy: under /services it is
      // tunnelled, elsewhere the proxy answers 404 (the control plane has no WebSocket
      // endpoints). Other upgrades (h2c) are served as plain HTTP/1.1.
      s.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (!isWebSocketUpgrade(req)) serveAsPlainHttp(s, req, socket, head);
        else {
          const bad = malformedHead(req);
          if (bad !== null) socket.end(rawErrorResponse(bad));
          else if (!front.onUpgrade(req, socket, head)) proxy.handleUpgrade(req, socket, head);
        }
      });
      server = s;
      return s;
    },
    bodyLimit: 10 * 1024 * 1024,
    return503OnClosing: false,
    // Undecodable URLs (FST_ERR_BAD_URL) and over-long path parameters (414) in the envelope.
    frameworkErrors: (err, _req, reply) => {
      const tooLong = (err as { statusCode?: number }).statusCode === 414;
      const e = tooLong
        ? new HestiaError('HESTIA_URI_TOO_LONG', 'a path segment is too long')
        : new HestiaError('HESTIA_BAD_REQUEST', 'the URL is not valid (bad percent-encoding)');
      (reply as FastifyReply).status(e.status).send(e.toBody());
    },
  });
  // Fastify's JSON parser (prototype-poisoning checks kept), behind a nesting limit: deep JSON is a 400.
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (jsonTooDeep(text))
      done(
        new HestiaError('HESTIA_BAD_REQUEST', `the JSON body is nested deeper than ${MAX_JSON_DEPTH} levels`),
        undefined,
      );
    else void parseJson(req, text, done);
  });

  fastify.setErrorHandler((err, _req, reply) => {
    if (err instanceof HestiaError) {
      for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
      return reply.status(err.status).send(err.toBody());
    }
    const e = err as { statusCode?: number; message?: string; code?: string };
    const status = typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    if (status >= 500) ctx.log.error({ err }, 'unhandled error in control-plane route');
    return reply
      .status(status)
      .send(
        errorBody(
          status >= 500 ? 'HESTIA_INTERNAL' : status === 413 ? 'HESTIA_PAYLOAD_TOO_LARGE' : 'HESTIA_BAD_REQUEST',
          status >= 500 ? 'internal error' : (e.message ?? 'bad request'),
        ),
      );
  });
  fastify.setNotFoundHandler((req, reply) =>
    reply
      .status(404)
      .send({ error: `no route ${req.method} ${req.url.split('?')[0]}`, code: 'HESTIA_NOT_FOUND', src: 'hestia' }),
  );

  // Auth first: its onRequest hook must sit in front of every route registered after it.
  await registerAuth(fastify, ctx);
  await registerHealthRoutes(fastify, ctx);
  await registerServiceRoutes(fastify, ctx);
  await registerEventRoutes(fastify, ctx, obs.events);
  await registerLogRoutes(fastify, ctx, obs.events);
  await registerMetricsRoutes(fastify, ctx, obs.metrics);
  await registerDashboard(fastify, ctx);
  await registerDashboardDataRoutes(fastify, ctx, timeline);
  await registerMachineRoutes(fastify, ctx);
  await registerStrategyRoutes(fastify, ctx);
  await registerModelRoutes(fastify, ctx);
  await registerRequestRoutes(fastify, ctx, proxy);

  await fastify.ready();
  if (!server) throw new Error('fastify did not call serverFactory');
  return { server, fastify, front };
}
