/**
 * Metrics endpoints (SPEC §2):
 * - `GET /metrics`: Prometheus text exposition (format 0.0.4) of the gateway's own registry.
 *   Needs a key or session when auth is on, unless `auth.protect_metrics: false`.
 * - `GET /v1/metrics`: the original's JSON shape `{counters, gauges, timers, histograms, services}`.
 * - `GET /v1/services/{id}/metrics`: one service's `{state, counters, gauges, timers, histograms}`;
 *   unknown id → 404 with the list of services.
 * Names, labels and the JSON mapping: docs/observability.md.
 */
import type { FastifyInstance } from 'fastify';
import { unknownServiceError } from '../../errors.ts';
import type { GatewayContext } from '../../gateway-context.ts';
import { metricsJson, serviceMetricsJson } from '../../observability/json-metrics.ts';
import type { GatewayMetrics } from '../../observability/metrics.ts';

export async function registerMetricsRoutes(
  app: FastifyInstance,
  ctx: GatewayContext,
  metrics: GatewayMetrics,
): Promise<void> {
  app.get('/metrics', async (_req, reply) => {
    const text = await metrics.prometheus();
    return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
  });

  app.get('/v1/metrics', async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    return metricsJson(metrics, ctx.auth.metrics().denied);
  });

  app.get<{ Params: { id: string } }>('/v1/services/:id/metrics', async (req, reply) => {
    const id = req.params.id;
    if (!ctx.services.get(id)) throw unknownServiceError(id, ctx.services.ids());
    reply.header('cache-control', 'no-store');
    return serviceMetricsJson(metrics, id);
  });
}
