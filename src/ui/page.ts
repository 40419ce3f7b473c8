/**
 * The dashboard page, rendered on the server: a table of services and the recent events, as
 * plain HTML that is complete without JavaScript. /ui/app.js then keeps it live (event stream,
 * countdowns, start/stop buttons). No inline script or style: the page runs under a CSP of
 * `script-src 'self'; style-src 'self'`.
 *
 * The summaries here (`describeEvent`, `ago`, `duration`) have twins in assets/app.js, which
 * formats the rows it updates the same way; keep them in step.
 */
import { escapeHtml } from '../auth/login-page.ts';
import type { ApiEvent } from '../observability/event-stream.ts';
import type { ServiceStatus } from '../services/types.ts';
import { machinesPanel, type PanelMachine } from './machines-panel.ts';

export interface PageData {
  services: ServiceStatus[];
  /** The model names each service serves (its `models:`), by service id; none → absent. */
  models?: Readonly<Record<string, readonly string[]>>;
  /** Newest first. */
  events: ApiEvent[];
  /** Logged-in user (auth on, session), or null. */
  user: string | null;
  /** Show the log-out button (auth on and a session). */
  canLogout: boolean;
  now: number;
  /** Links to each service's doors (SPEC §10): label → URL; absent = the path door only. */
  doors?: Record<string, Array<{ label: string; url: string }>>;
  /** Machines with capacity, allocation and live resources (GET /v1/machines); absent = none shown. */
  machines?: PanelMachine[];
}

/** "3 s", "4 min 5 s", "2 h 1 min". */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function ago(iso: string | null, now: number): string {
  if (iso === null) return 'never';
  return `${duration(now - Date.parse(iso))} ago`;
}

export function idleText(s: ServiceStatus): string {
  if (s.idleTimeoutMs === 0) return 'never';
  if (s.idleRemainingMs === null || s.idleRemainingMs === undefined) return '—';
  return duration(s.idleRemainingMs);
}

/** A short time: "12 ms" under a second, else "8.2 s". */
function brief(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** `service_ready`: the whole start, and where it went when the event says (its phases). */
function readyText(d: Record<string, unknown>, total: number): string {
  const head = `ready after ${(total / 1000).toFixed(1)} s`;
  const { launchAfterMs: before, launchTookMs: call, readyAfterMs: after } = d;
  if (typeof before !== 'number' || typeof call !== 'number' || typeof after !== 'number') return head;
  return `${head}: launch ${brief(before + call)}, its own start-up ${brief(after)}`;
}

/** One line about an event's details (the type and service are shown beside it). */
export function describeEvent(ev: ApiEvent): string {
  const d = ev.details;
  if (ev.type === 'service_ready' && typeof d.coldStartMs === 'number') return readyText(d, d.coldStartMs);
  if (typeof d.error === 'string') return d.error;
  if (typeof d.reason === 'string') return d.reason;
  if (typeof d.cause === 'string') return d.cause;
  if (typeof d.code === 'string') return d.code;
  return '';
}

/** "08:00" (or "Mon 08:00") of an ISO time, in the local time zone the windows are written in. */
function hhmm(iso: string, withDay = false): string {
  const d = new Date(iso);
  const t = `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
  return withDay ? `${['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getDay()]} ${t}` : t;
}

/** The state as shown: a paused service (`stop_mode: pause`) is cold, shown as "paused". */
export function shownState(s: ServiceStatus): string {
  return s.state === 'cold' && s.paused === true ? 'paused' : s.state;
}

/** The service's lifecycle policies in a few words (empty when it has none); also each status's `policyLine` in GET /v1/dashboard. */
export function policySummary(s: ServiceStatus): string {
  const parts: string[] = [];
  const kw = s.keepWarm;
  if (kw?.active) parts.push(`keep-warm until ${kw.activeUntil ? hhmm(kw.activeUntil) : '?'}`);
  else if (kw?.nextStart) parts.push(`keep-warm from ${hhmm(kw.nextStart, true)}`);
  if (s.dependsOn?.length) parts.push(`needs ${s.dependsOn.join(', ')}`);
  if (s.group) parts.push(`group ${s.group}`);
  if (s.preload) parts.push('preload');
  if (s.stopMode === 'pause') parts.push('pauses when idle');
  // An active window already says why it is up.
  if (s.idleHold && s.state === 'hot' && !kw?.active) parts.push(`kept up: ${s.idleHold}`);
  return parts.join(' · ');
}

function serviceRow(
  s: ServiceStatus,
  now: number,
  models: readonly string[],
  doors: Array<{ label: string; url: string }> = [],
): string {
  const id = escapeHtml(s.serviceId);
  const modelList =
    models.length > 0 ? `<span class="models" data-field="models">${models.map(escapeHtml).join(', ')}</span>` : '';
  const links = doors.map((d) => ` <a class="door" href="${escapeHtml(d.url)}">${escapeHtml(d.label)}</a>`).join('');
  const policy = `<span class="policy" data-field="policy">${escapeHtml(policySummary(s))}</span>`;
  const shown = shownState(s);
  const canStart = s.state === 'cold';
  const canStop = s.state === 'hot' || s.state === 'starting';
  return `<tr data-service="${id}" data-state="${s.state}">
  <th scope="row"><a href="/services/${encodeURIComponent(s.serviceId)}/" title="Open ${id}">${id}</a>${links}${modelList}${policy}</th>
  <td data-field="state"><span class="state state-${shown}">${shown}</span></td>
  <td data-field="machine">${escapeHtml(s.machineId ?? '—')}</td>
  <td data-field="inflight" class="num">${s.inflight}</td>
  <td data-field="queued" class="num">${s.queuePending}</td>
  <td data-field="traffic" class="chart"><span class="figure muted">no traffic</span></td>
  <td data-field="latency" class="chart"><span class="figure muted">—</span></td>
  <td data-field="coldStart" class="num">—</td>
  <td class="used"><span data-field="lastUsed">${escapeHtml(ago(s.lastUsedAt, now))}</span><br><span class="muted" title="idle stop in" data-field="idle">${escapeHtml(idleText(s))}</span></td>
  <td data-field="lastError" class="error">${s.lastError ? `<span title="${escapeHtml(s.lastError.at)}">${escapeHtml(s.lastError.message)}</span>` : ''}</td>
  <td class="actions">
    <button type="button" data-action="start" aria-label="Start ${id}"${canStart ? '' : ' disabled'}>Start</button>
    <button type="button" data-action="stop" aria-label="Stop ${id}"${canStop ? '' : ' disabled'}>Stop</button>
    <button type="button" data-action="restart" aria-label="Restart ${id}"${s.state === 'stopping' ? ' disabled' : ''}>Restart</button>
    <button type="button" data-action="logs" aria-label="Output of ${id}">Logs</button>
  </td>
</tr>`;
}

function eventItem(ev: ApiEvent, count = 1): string {
  const what = describeEvent(ev);
  const times = count > 1 ? ` <span class="count">×${count}</span>` : '';
  return `<li data-id="${ev.id ?? ''}" data-type="${escapeHtml(ev.type)}" data-service="${escapeHtml(ev.serviceId ?? '')}" data-count="${count}"><time datetime="${ev.time}">${ev.time.slice(11, 19)}</time> <span class="type">${escapeHtml(ev.type)}</span>${times} <span class="svc">${escapeHtml(ev.serviceId ?? '')}</span>${what ? ` <span class="what">${escapeHtml(what)}</span>` : ''}</li>`;
}

/** Event types whose runs (newest first, one after another) are shown as one line with a count. */
export const GROUPED_EVENT_TYPES = new Set(['auth_denied', 'queue_rejected']);

/** The events list: runs of a grouped type collapse into their newest event, with a count. */
export function eventItems(events: ApiEvent[]): string {
  const out: string[] = [];
  for (let i = 0; i < events.length; ) {
    const ev = events[i]!;
    let j = i + 1;
    if (GROUPED_EVENT_TYPES.has(ev.type)) while (j < events.length && events[j]!.type === ev.type) j++;
    out.push(eventItem(ev, j - i));
    i = j;
  }
  return out.join('\n');
}

function options(values: Iterable<string>, all: string): string {
  return [`<option value="">${all}</option>`, ...[...values].map((v) => `<option>${escapeHtml(v)}</option>`)].join('');
}

export function dashboardPage(d: PageData): string {
  const lastId = d.events.reduce((max, e) => (e.id !== null && e.id > max ? e.id : max), 0);
  const who = d.user
    ? `<span>Logged in as ${escapeHtml(d.user)}</span>${
        d.canLogout
          ? ' <form method="post" action="/ui/logout"><button type="submit" class="link">Log out</button></form>'
          : ''
      }`
    : '';
  const rows = d.services.length
    ? d.services.map((s) => serviceRow(s, d.now, d.models?.[s.serviceId] ?? [], d.doors?.[s.serviceId])).join('\n')
    : '<tr><td colspan="11">No services are configured.</td></tr>';
  const types = new Set([
    'service_start',
    'service_ready',
    'service_start_failed',
    'service_stop',
    'service_stopped',
    'service_crashed',
    'idle_shutdown',
    'service_paused',
    'machine_failover',
    'capacity_eviction',
    'agent_unreachable',
    'agent_reconnected',
    'webhook_failed',
    'auth_denied',
    ...d.events.map((e) => e.type),
  ]);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hestia</title>
<link rel="icon" href="/ui/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/ui/uplot.css">
<link rel="stylesheet" href="/ui/app.css">
<script src="/ui/uplot.js" defer></script>
<script src="/ui/app.js" defer></script>
</head>
<body>
<header>
  <h1>Hestia</h1>
  <p id="live" class="live" role="status" aria-live="polite">connecting…</p>
  <div class="who">${who}</div>
</header>
<main>
<section aria-labelledby="services-title">
  <h2 id="services-title">Services</h2>
  <p id="notice" class="notice" role="alert" hidden></p>
  <div id="services-wrap">
  <table id="services">
    <thead>
      <tr>
        <th scope="col">Service</th>
        <th scope="col">State</th>
        <th scope="col">Machine</th>
        <th scope="col" class="num">In flight</th>
        <th scope="col" class="num">Queued</th>
        <th scope="col" title="Requests per second (green) and errors per second (red), last 15 minutes">Requests/s</th>
        <th scope="col" title="Latency p50 (blue) and p95 (orange), last 15 minutes">Latency p50/p95</th>
        <th scope="col" class="num" title="Time from start to ready: last / typical (median)">Cold start</th>
        <th scope="col" title="Last used, and the idle stop's countdown under it">Used / idle stop</th>
        <th scope="col">Last error</th>
        <th scope="col"><span class="visually-hidden">Actions</span></th>
      </tr>
    </thead>
    <tbody>
${rows}
    </tbody>
  </table>
  </div>
</section>
${d.machines ? machinesPanel(d.machines) : ''}
<section aria-labelledby="output-title" id="output">
  <h2 id="output-title">Output <span id="output-service" class="muted">— choose “Output” on a service</span></h2>
  <pre id="log" tabindex="0"></pre>
</section>
<section aria-labelledby="events-title">
  <h2 id="events-title">Recent events</h2>
  <div class="filters">
    <label>Service <select id="filter-service">${options(
      d.services.map((s) => s.serviceId),
      'all services',
    )}</select></label>
    <label>Type <select id="filter-type">${options([...types].sort(), 'all types')}</select></label>
  </div>
  <ol id="events" data-last-id="${lastId}">
${d.events.length ? eventItems(d.events) : '<li class="none">No events yet.</li>'}
  </ol>
</section>
</main>
</body>
</html>
`;
}
