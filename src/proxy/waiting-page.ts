/**
 * The "starting…" page a browser gets at once for a cold service with `waiting_page: true`
 * (SPEC §4, §12). API clients never see it: they are held transparently.
 *
 * The page tells the truth without reloading itself: its script polls
 * `/v1/services/{id}/status` (state, time waited, `lastError`, the start backoff) and
 * `/v1/services/{id}/logs?tail=N` (the service's last output lines) every second, and
 * - shows how long the start has been running and the last lines the service printed;
 * - when the start failed, shows the error and a "Try again" button (`POST
 *   /v1/services/{id}/start`, which starts at once even during the backoff) instead of
 *   "starting" forever — reloading the page does not start the service again during the
 *   backoff (the proxy's start is `byRequest`);
 * - reloads once the service is hot, and the reload is proxied to the service itself.
 * Those are control-plane routes: with auth on they need the dashboard session (or the page
 * cannot read them; it then falls back to reloading itself every few seconds, which never
 * starts the service during the backoff). Without JavaScript a `<noscript>` refresh does the same.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Reload period of the fallback (no JavaScript, or no access to the status API). */
export const WAITING_PAGE_REFRESH_S = 5;
/** How often the page asks for the status and the last output lines. */
export const WAITING_PAGE_POLL_MS = 1_000;
/** Output lines the page shows. */
export const WAITING_PAGE_LOG_LINES = 12;

/** A browser navigation: GET with `text/html` in Accept (`*\/*` alone is an API client). */
export function wantsWaitingPage(req: IncomingMessage): boolean {
  if (req.method !== 'GET') return false;
  return req.headers.accept?.toLowerCase().includes('text/html') === true;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page's script (plain browser JavaScript; the service id arrives as JSON, never as markup). */
function script(serviceId: string, originDoor: boolean): string {
  // `</` cannot appear in JSON.stringify output unescaped in a way that closes the script: escape it.
  const id = JSON.stringify(serviceId).replace(/</g, '\\u003c');
  return `(() => {
  const id = ${id};
  // On a host or port door every path belongs to the service: its status is under the reserved
  // /.hestia/ prefix, and there is no logs or start endpoint there (the button reloads instead).
  const originDoor = ${originDoor ? 'true' : 'false'};
  const base = '/v1/services/' + encodeURIComponent(id);
  const statusUrl = originDoor ? '/.hestia/status' : base + '/status';
  const $ = (x) => document.getElementById(x);
  let shownAt = Date.now();
  let startingForMs = null;
  let busy = false;
  function dur(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    return s < 60 ? s + ' s' : Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
  }
  function fallback(why) {
    $('note').textContent = why + ' This page reloads every ${WAITING_PAGE_REFRESH_S} s.';
    setTimeout(() => location.reload(), ${WAITING_PAGE_REFRESH_S * 1000});
  }
  function tick() {
    if (startingForMs !== null) $('waited').textContent = dur(startingForMs + Date.now() - shownAt);
  }
  async function poll() {
    if (busy) return;
    busy = true;
    try {
      const res = await fetch(statusUrl, { headers: { accept: 'application/json' }, credentials: 'same-origin' });
      if (res.status === 401 || res.status === 403) {
        clearInterval(timer);
        fallback('Live updates need access to the gateway API.');
        return;
      }
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const s = await res.json();
      document.body.dataset.state = s.state;
      $('state').textContent = s.state;
      if (s.state === 'hot') {
        clearInterval(timer);
        location.reload();
        return;
      }
      const failed = s.state === 'cold' && s.lastError;
      $('failed').hidden = !failed;
      $('starting').hidden = !!failed;
      $('retry').disabled = !failed;
      if (failed) {
        $('title').textContent = id + ' failed to start';
        $('error').textContent = s.lastError.message;
        $('backoff').textContent = s.startBackoffRemainingMs
          ? 'It will not be started again by a request for ' + dur(s.startBackoffRemainingMs) + '.'
          : '';
        startingForMs = null;
        $('waited').textContent = '–';
      } else {
        $('title').textContent = id + ' is starting';
        if (typeof s.startingForMs === 'number') {
          startingForMs = s.startingForMs;
          shownAt = Date.now();
        }
        tick();
      }
      const lr = originDoor
        ? null
        : await fetch(base + '/logs?tail=${WAITING_PAGE_LOG_LINES}', { headers: { accept: 'application/json' }, credentials: 'same-origin' });
      if (lr !== null && lr.ok) {
        const body = await lr.json();
        $('log').textContent = body.lines.map((l) => l.text).join('\\n');
        $('log-section').hidden = body.lines.length === 0;
      }
      $('note').textContent = '';
    } catch (err) {
      $('note').textContent = 'Cannot reach the gateway (' + err.message + '); still trying.';
    } finally {
      busy = false;
    }
  }
  $('retry').addEventListener('click', async () => {
    $('retry').disabled = true;
    if (originDoor) {
      location.reload();
      return;
    }
    try {
      const res = await fetch(base + '/start', { method: 'POST', headers: { accept: 'application/json' }, credentials: 'same-origin' });
      if (!res.ok && res.status !== 409) {
        const body = await res.json().catch(() => ({}));
        $('note').textContent = 'Could not start it: ' + (body.error || 'HTTP ' + res.status);
      }
    } catch (err) {
      $('note').textContent = 'Could not start it: ' + err.message;
    }
    void poll();
  });
  const timer = setInterval(poll, ${WAITING_PAGE_POLL_MS});
  setInterval(tick, 1000);
  void poll();
})();`;
}

export function waitingPageHtml(serviceId: string, originDoor = false): string {
  const id = escapeHtml(serviceId);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<noscript><meta http-equiv="refresh" content="${WAITING_PAGE_REFRESH_S}"></noscript>
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${id} is starting</title>
<style>
body{font-family:system-ui,sans-serif;color:#222;margin:0;display:grid;place-items:center;min-height:100vh;background:#f6f7f9}
main{max-width:52rem;width:calc(100% - 2rem);background:#fff;border:1px solid #ddd;border-radius:8px;padding:1.5rem 2rem}
h1{margin-top:0;font-size:1.5rem}
.meta{color:#555}
#failed{border-left:4px solid #b3261e;padding:.5rem 1rem;background:#fdf0ef}
#error{white-space:pre-wrap;overflow-wrap:anywhere;font-family:ui-monospace,monospace;font-size:.9rem}
#log{background:#111;color:#ddd;padding:.75rem;border-radius:4px;max-height:16rem;overflow:auto;font-size:.8rem;white-space:pre-wrap;overflow-wrap:anywhere}
button{font-size:1rem;padding:.4rem 1rem;cursor:pointer}
#note{color:#8a5a00}
</style>
</head>
<body data-state="unknown">
<main>
<h1 id="title">${id} is starting</h1>
<p class="meta">State: <strong id="state">starting</strong> · waited <span id="waited">–</span></p>
<p id="starting">The service is being started. This page follows the start and shows the service as soon as it is ready.</p>
<section id="failed" hidden>
<p><strong>The start failed:</strong></p>
<p id="error"></p>
<p id="backoff"></p>
<p><button type="button" id="retry" disabled>Try again</button></p>
</section>
<section id="log-section" hidden>
<h2>Last output</h2>
<pre id="log"></pre>
</section>
<p id="note" role="status"></p>
</main>
<script>${script(serviceId, originDoor)}</script>
</body>
</html>
`;
}

/** `originDoor`: served on a host or port door, whose paths are all the service's (see script). */
export function sendWaitingPage(res: ServerResponse, serviceId: string, requestId: string, originDoor = false): void {
  const body = waitingPageHtml(serviceId, originDoor);
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    'x-request-id': requestId,
  });
  res.end(body);
}
