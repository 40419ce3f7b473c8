/**
 * PLACEHOLDER for the dashboard (SPEC §9), which a colleague builds later: `GET /ui` answers a
 * small page so the login flow has somewhere to land. The auth hook in fastify-auth.ts protects
 * the whole `/ui` prefix whatever routes end up there; the dashboard replaces this file's
 * registration (in server/app.ts) with its own routes.
 */
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../server/context.ts';
import { escapeHtml } from './login-page.ts';

export async function registerUiPlaceholder(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  app.get('/ui', async (req, reply) => {
    const who = req.hestiaAuth?.ok ? req.hestiaAuth.keyName : null;
    const logout =
      ctx.config.auth.enabled && who !== null
        ? '<form method="post" action="/ui/logout"><button type="submit">Log out</button></form>'
        : '';
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-store')
      .send(
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Hestia</title></head><body>` +
          `<h1>Hestia</h1><p>The dashboard is not built yet.${who ? ` Logged in as ${escapeHtml(who)}.` : ''}</p>${logout}</body></html>\n`,
      );
  });
}
