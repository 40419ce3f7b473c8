/**
 * The "starting…" page a browser gets at once for a cold service with `waiting_page: true`
 * (SPEC §4). It reloads itself every 2 s; once the service is hot, the reload is proxied
 * normally. API clients never see it: they are held transparently.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const WAITING_PAGE_REFRESH_S = 2;

/** A browser navigation: GET with `text/html` in Accept (`*\/*` alone is an API client). */
export function wantsWaitingPage(req: IncomingMessage): boolean {
  if (req.method !== 'GET') return false;
  return req.headers.accept?.toLowerCase().includes('text/html') === true;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function waitingPageHtml(serviceId: string): string {
  const id = escapeHtml(serviceId);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="${WAITING_PAGE_REFRESH_S}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${id} is starting</title>
<style>body{font-family:system-ui,sans-serif;display:grid;place-items:center;min-height:90vh;color:#333}</style>
</head>
<body>
<main>
<h1>${id} is starting</h1>
<p>This page reloads every ${WAITING_PAGE_REFRESH_S} seconds and shows the service as soon as it is ready.</p>
</main>
</body>
</html>
`;
}

export function sendWaitingPage(res: ServerResponse, serviceId: string, requestId: string): void {
  const body = waitingPageHtml(serviceId);
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  });
  res.end(body);
}
