/**
 * The dashboard: `GET /ui` (server-rendered page) and its files `/ui/app.js`, `/ui/app.css`,
 * `/ui/favicon.svg`, and uPlot's `/ui/uplot.js` + `/ui/uplot.css` (from node_modules).
 * The page polls `/v1/dashboard` (statuses, machines, timelines), follows `/v1/events/stream` and
 * a service's `/v1/services/{id}/logs/stream`, and POSTs start/stop, all same-origin.
 *
 * Auth is not decided here: the hook in server/control-plane-auth.ts guards the whole `/ui` prefix (a
 * browser without a session is sent to /ui/login) and the `/v1` routes the page calls.
 *
 * Every response carries a strict Content-Security-Policy: scripts and styles only from this
 * origin's files (no inline code at all), network only to this origin, no framing, and forms
 * may only post here (the log-out button).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { hostTable, portDoors } from '../config/doors.ts';
import type { Config } from '../config/schema.ts';
import type { GatewayContext } from '../gateway-context.ts';
import { apiEvent } from '../observability/event-stream.ts';
import { dashboardPage } from './page.ts';

export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** Events shown when the page loads (the stream adds newer ones). */
export const PAGE_EVENTS = 30;

const APP_JS = readFileSync(new URL('./assets/app.js', import.meta.url));
const APP_CSS = readFileSync(new URL('./assets/app.css', import.meta.url));
const FAVICON = readFileSync(new URL('./assets/favicon.svg', import.meta.url));
// uPlot (charts), from its npm package, served by the gateway itself: no CDN, works offline.
const requireFromHere = createRequire(import.meta.url);
const UPLOT_JS = readFileSync(requireFromHere.resolve('uplot/dist/uPlot.iife.min.js'));
const UPLOT_CSS = readFileSync(requireFromHere.resolve('uplot/dist/uPlot.min.css'));

function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', DASHBOARD_CSP)
    .header('x-frame-options', 'DENY')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'same-origin');
}

/** Each service's doors as seen from the dashboard's own host (SPEC §10): path, host names, port. */
export function doorLinks(config: Config, requestHost: string): Record<string, Array<{ label: string; url: string }>> {
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(requestHost);
  const hostname = m?.[1] || 'localhost';
  const port = m?.[2] === undefined ? '' : `:${m[2]}`;
  const out: Record<string, Array<{ label: string; url: string }>> = {};
  const add = (id: string, label: string, url: string) => {
    out[id] = [...(out[id] ?? []), { label, url }];
  };
  for (const [host, id] of hostTable(config)) add(id, host, `//${host}${port}/`);
  for (const d of portDoors(config)) {
    if (d.port === 0) continue;
    const h =
      d.host === null || d.host === '0.0.0.0' || d.host === '::'
        ? hostname
        : d.host.includes(':')
          ? `[${d.host}]`
          : d.host;
    add(d.serviceId, `:${d.port}`, `//${h}:${d.port}/`);
  }
  return out;
}

export async function registerDashboard(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  app.get('/ui', async (req, reply) => {
    const who = req.hestiaAuth?.ok ? req.hestiaAuth : null;
    const services = ctx.services.ids().flatMap((id) => {
      const s = ctx.services.get(id);
      return s ? [s.status()] : [];
    });
    const events = ctx.store.queryEvents({ limit: PAGE_EVENTS }).map((e) => apiEvent(e, e.id));
    const html = dashboardPage({
      services,
      models: Object.fromEntries(Object.entries(ctx.config.services).map(([id, svc]) => [id, svc.models])),
      events,
      user: who?.keyName ?? null,
      canLogout: ctx.config.auth.enabled && who?.via === 'session',
      now: Date.now(),
      doors: doorLinks(ctx.config, req.headers.host ?? ''),
      machines: ctx.machines?.list() ?? [],
    });
    return secure(reply)
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(html);
  });

  app.get('/ui/', async (_req, reply) => reply.redirect('/ui', 301));

  // The page's own script and style are revalidated (they change with the gateway); uPlot's, pinned
  // by the lockfile, are cached for a day.
  const assets: Array<[path: string, type: string, cache: string, body: Buffer]> = [
    ['/ui/app.js', 'text/javascript', 'no-cache', APP_JS],
    ['/ui/app.css', 'text/css', 'no-cache', APP_CSS],
    ['/ui/uplot.js', 'text/javascript', 'max-age=86400', UPLOT_JS],
    ['/ui/uplot.css', 'text/css', 'max-age=86400', UPLOT_CSS],
  ];
  for (const [path, type, cache, body] of assets) {
    app.get(path, async (_req, reply) =>
      secure(reply).header('content-type', `${type}; charset=utf-8`).header('cache-control', cache).send(body),
    );
  }

  app.get('/ui/favicon.svg', async (_req, reply) =>
    secure(reply).header('content-type', 'image/svg+xml').header('cache-control', 'max-age=86400').send(FAVICON),
  );
}
