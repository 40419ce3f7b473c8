/**
 * `GET /v1/dashboard?since=<epoch ms>`: everything the dashboard's live view needs, in one
 * request (one poll per interval whatever the number of services):
 *
 * ```
 * {now, services: [status + policyLine, …], machines: [machine, …], machinesHtml,
 *  timeline: {bucketMs, start, buckets, now, services: {id: {at, count, errors, p50, p95}}, coldStarts: {id: {lastMs, typicalMs, samples, at}}}}
 * ```
 *
 * `timeline` (observability/request-timeline.ts) holds 10-second buckets from `since` (default:
 * the whole 15-minute window) to now, only for services that had requests and only the buckets
 * that had requests (`at` = bucket index from `start`); the page asks for the
 * whole window once, then only from the last bucket it holds, so a poll stays small with hundreds
 * of services. `machinesHtml` is the machines panel as the page shows it (ui/machines-panel.ts,
 * the panel's one renderer). Auth is the control plane's (the `/v1` hook); a scoped key sees only its services.
 */
import type { FastifyInstance } from 'fastify';
import { HestiaError } from '../../errors.ts';
import type { GatewayContext } from '../../gateway-context.ts';
import type { RequestTimeline } from '../../observability/request-timeline.ts';
import { machineCards } from '../../ui/machines-panel.ts';
import { policySummary } from '../../ui/page.ts';

interface SinceQuery {
  since?: string;
}

export async function registerDashboardDataRoutes(
  app: FastifyInstance,
  ctx: GatewayContext,
  timeline: RequestTimeline,
): Promise<void> {
  app.get<{ Querystring: SinceQuery }>('/v1/dashboard', async (req) => {
    let since: number | undefined;
    const raw = req.query.since;
    if (raw !== undefined && raw !== '') {
      since = Number(raw);
      if (!Number.isFinite(since) || since < 0) {
        throw new HestiaError(
          'HESTIA_BAD_REQUEST',
          `since must be a time in epoch milliseconds, got ${JSON.stringify(raw)}`,
          {
            field: 'since',
          },
        );
      }
    }
    const scope = req.hestiaAuth?.ok ? req.hestiaAuth.services : null;
    const all = ctx.services.ids();
    const ids = scope === null ? all : all.filter((id) => scope.includes(id));
    // Each status with its policy line as the page shows it (ui/page.ts renders it, once).
    const services = ids.flatMap((id) => {
      const s = ctx.services.get(id)?.status();
      return s ? [{ ...s, policyLine: policySummary(s) }] : [];
    });
    const machines = ctx.machines?.list() ?? [];
    return {
      now: Date.now(),
      services,
      machines,
      machinesHtml: machineCards(machines),
      timeline: timeline.snapshot({ ids, configured: new Set(all), ...(since === undefined ? {} : { since }) }),
    };
  });
}
