// The dashboard's behaviour (served as /ui/app.js; plain browser JavaScript, no build step).
// The page arrives complete from the server (src/ui/page.ts); this script keeps it live:
// - the event stream (/v1/events/stream, SSE) prepends events and triggers a refresh of the
//   service rows from /v1/services; a slow poll also catches in-flight/queue changes, which are
//   not events;
// - "last used" and the idle countdown tick every second;
// - Start/Stop buttons POST /v1/services/{id}/start|stop; Restart is a stop then a start (a start
//   asked while stopping follows the stop). With auth on, the session cookie authorises them and
//   fetch() sends the same-origin Origin header the CSRF rule asks for;
// - "Output" follows one service's output (/v1/services/{id}/logs/stream, SSE) in the panel;
// - events can be filtered by service and type; runs of auth_denied / queue_rejected are one
//   line with a count (as the server renders them).
// duration/ago/describe mirror src/ui/page.ts.

(() => {
  const MAX_EVENTS = 50;
  const MAX_LOG_LINES = 500;
  const GROUPED = new Set(['auth_denied', 'queue_rejected']);
  const logPre = document.getElementById('log');
  const logTitle = document.getElementById('output-service');
  const filterService = document.getElementById('filter-service');
  const filterType = document.getElementById('filter-type');
  /** The output stream followed in the panel. */
  let logStream = null;
  const POLL_MS = 2000;
  const tbody = document.querySelector('#services tbody');
  const list = document.getElementById('events');
  const live = document.getElementById('live');
  const notice = document.getElementById('notice');
  /** id -> {status, at}: the last status seen and when it was fetched (for the countdowns). */
  const known = new Map();

  function duration(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${s % 60} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function ago(iso, now) {
    return iso === null || iso === undefined ? 'never' : `${duration(now - Date.parse(iso))} ago`;
  }

  function idleText(s, elapsed) {
    if (s.idleTimeoutMs === 0) return 'never';
    if (s.idleRemainingMs === null || s.idleRemainingMs === undefined) return '—';
    return duration(s.idleRemainingMs - elapsed);
  }

  function describe(ev) {
    const d = ev.details || {};
    if (ev.type === 'service_ready' && typeof d.coldStartMs === 'number')
      return `ready after ${(d.coldStartMs / 1000).toFixed(1)} s`;
    for (const k of ['error', 'reason', 'cause', 'code']) if (typeof d[k] === 'string') return d[k];
    return '';
  }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = text === '';
  }

  function setLive(on, text) {
    live.textContent = text;
    live.classList.toggle('on', on);
    live.classList.toggle('off', !on);
  }

  function cell(row, field) {
    return row.querySelector(`[data-field="${field}"]`);
  }

  /** A row for a service the page did not know (added by a config reload). */
  function createRow(id) {
    const row = document.createElement('tr');
    row.dataset.service = id;
    const th = document.createElement('th');
    th.scope = 'row';
    const a = document.createElement('a');
    a.href = `/services/${encodeURIComponent(id)}/`;
    a.textContent = id;
    th.append(a);
    row.append(th);
    for (const field of ['state', 'machine', 'inflight', 'queued', 'lastUsed', 'idle', 'lastError']) {
      const td = document.createElement('td');
      td.dataset.field = field;
      if (field === 'inflight' || field === 'queued') td.className = 'num';
      if (field === 'lastError') td.className = 'error';
      row.append(td);
    }
    const state = document.createElement('span');
    cell(row, 'state').append(state);
    const actions = document.createElement('td');
    actions.className = 'actions';
    const labels = { start: 'Start', stop: 'Stop', restart: 'Restart', logs: 'Output' };
    for (const action of Object.keys(labels)) {
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.action = action;
      b.textContent = labels[action];
      b.setAttribute('aria-label', action === 'logs' ? `Output of ${id}` : `${b.textContent} ${id}`);
      actions.append(b, ' ');
    }
    row.append(actions);
    tbody.append(row);
    return row;
  }

  function render(row, s, now, at) {
    const state = cell(row, 'state').firstElementChild;
    state.textContent = s.state;
    state.className = `state state-${s.state}`;
    row.dataset.state = s.state;
    cell(row, 'machine').textContent = s.machineId || '—';
    cell(row, 'inflight').textContent = String(s.inflight);
    cell(row, 'queued').textContent = String(s.queuePending);
    cell(row, 'lastUsed').textContent = ago(s.lastUsedAt, now);
    cell(row, 'idle').textContent = idleText(s, now - at);
    const err = cell(row, 'lastError');
    err.textContent = s.lastError ? s.lastError.message : '';
    err.title = s.lastError ? s.lastError.at : '';
    row.querySelector('[data-action="start"]').disabled = s.state !== 'cold';
    row.querySelector('[data-action="stop"]').disabled = !(s.state === 'hot' || s.state === 'starting');
    row.querySelector('[data-action="restart"]').disabled = s.state === 'stopping';
  }

  function rowOf(id) {
    for (const row of tbody.rows) if (row.dataset.service === id) return row;
    return null;
  }

  let refreshing = false;
  let again = false;
  async function refresh() {
    if (refreshing) {
      again = true;
      return;
    }
    refreshing = true;
    try {
      const res = await fetch('/v1/services', { headers: { accept: 'application/json' }, credentials: 'same-origin' });
      if (res.status === 401) {
        showNotice('Your session has ended: reload the page to log in again.');
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = await res.json();
      const at = Date.now();
      const seen = new Set();
      for (const s of body.services) {
        seen.add(s.serviceId);
        known.set(s.serviceId, { status: s, at });
        render(rowOf(s.serviceId) || createRow(s.serviceId), s, at, at);
      }
      for (const row of [...tbody.rows]) {
        if (row.dataset.service && !seen.has(row.dataset.service)) {
          known.delete(row.dataset.service);
          row.remove();
        }
      }
    } catch (err) {
      setLive(false, `cannot reach the gateway (${err.message})`);
    } finally {
      refreshing = false;
      if (again) {
        again = false;
        void refresh();
      }
    }
  }

  function tick() {
    const now = Date.now();
    for (const [id, k] of known) {
      const row = rowOf(id);
      if (!row) continue;
      cell(row, 'lastUsed').textContent = ago(k.status.lastUsedAt, now);
      cell(row, 'idle').textContent = idleText(k.status, now - k.at);
    }
  }

  function localTime(ts) {
    return new Date(ts).toLocaleTimeString();
  }

  function visible(li) {
    const svc = filterService.value;
    const type = filterType.value;
    return (svc === '' || li.dataset.service === svc) && (type === '' || li.dataset.type === type);
  }

  function applyFilters() {
    for (const li of list.children) if (!li.classList.contains('none')) li.hidden = !visible(li);
  }

  function addEvent(ev) {
    const newest = list.firstElementChild;
    if (GROUPED.has(ev.type) && newest && newest.dataset.type === ev.type) {
      // A run of refusals is one line with a count, not a flood.
      const count = Number(newest.dataset.count || '1') + 1;
      newest.dataset.count = String(count);
      let c = newest.querySelector('.count');
      if (!c) {
        c = document.createElement('span');
        c.className = 'count';
        newest.querySelector('.type').after(' ', c);
      }
      c.textContent = `×${count}`;
      const t = newest.querySelector('time');
      t.dateTime = ev.time;
      t.textContent = localTime(ev.ts);
      newest.dataset.service = ev.serviceId || '';
      newest.querySelector('.svc').textContent = ev.serviceId || '';
      newest.dataset.id = ev.id === null ? '' : String(ev.id);
      newest.hidden = !visible(newest);
      return;
    }
    const li = document.createElement('li');
    li.dataset.id = ev.id === null ? '' : String(ev.id);
    li.dataset.type = ev.type;
    li.dataset.service = ev.serviceId || '';
    li.dataset.count = '1';
    const time = document.createElement('time');
    time.dateTime = ev.time;
    time.textContent = localTime(ev.ts);
    const type = document.createElement('span');
    type.className = 'type';
    type.textContent = ev.type;
    const svc = document.createElement('span');
    svc.className = 'svc';
    svc.textContent = ev.serviceId || '';
    li.append(time, ' ', type, ' ', svc);
    const what = describe(ev);
    if (what) {
      const w = document.createElement('span');
      w.className = 'what';
      w.textContent = what;
      li.append(' ', w);
    }
    for (const none of list.querySelectorAll('li.none')) none.remove();
    li.hidden = !visible(li);
    list.prepend(li);
    while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
    if (![...filterType.options].some((o) => o.value === ev.type)) filterType.append(new Option(ev.type, ev.type));
  }

  function appendLog(line) {
    const atBottom = logPre.scrollTop + logPre.clientHeight >= logPre.scrollHeight - 4;
    const span = document.createElement('span');
    span.className = `line ${line.stream}`;
    span.textContent = `${line.text}\n`;
    logPre.append(span);
    while (logPre.childElementCount > MAX_LOG_LINES) logPre.firstElementChild.remove();
    if (atBottom) logPre.scrollTop = logPre.scrollHeight;
  }

  function followLogs(id) {
    if (logStream) logStream.close();
    logTitle.textContent = `of ${id}`;
    logPre.dataset.service = id;
    logPre.textContent = '';
    const es = new EventSource(`/v1/services/${encodeURIComponent(id)}/logs/stream?tail=200`);
    logStream = es;
    es.onopen = () => {
      // A reconnect (the gateway restarted) replays the tail: start the panel afresh.
      logPre.textContent = '';
    };
    es.onmessage = (m) => appendLog(JSON.parse(m.data));
    es.onerror = () => {
      if (es.readyState === EventSource.CLOSED) logTitle.textContent = `of ${id} (disconnected)`;
    };
  }

  function connect() {
    const since = Number(list.dataset.lastId || '0');
    const es = new EventSource(`/v1/events/stream${since > 0 ? `?since=${since}` : ''}`);
    es.onopen = () => {
      setLive(true, 'live');
      void refresh();
    };
    es.onmessage = (m) => {
      const ev = JSON.parse(m.data);
      if (ev.id !== null) list.dataset.lastId = String(ev.id);
      addEvent(ev);
      void refresh();
    };
    es.onerror = () => {
      // EventSource reconnects by itself (sending Last-Event-ID) unless the server refused it.
      setLive(false, es.readyState === EventSource.CLOSED ? 'disconnected: reload the page' : 'reconnecting…');
    };
  }

  tbody.addEventListener('click', async (e) => {
    const button = e.target.closest('button[data-action]');
    if (!button) return;
    const row = button.closest('tr');
    const id = row.dataset.service;
    const action = button.dataset.action;
    if (action === 'logs') {
      followLogs(id);
      document.getElementById('output').scrollIntoView({ block: 'nearest' });
      return;
    }
    button.disabled = true;
    const post = (what) =>
      fetch(`/v1/services/${encodeURIComponent(id)}/${what}`, {
        method: 'POST',
        headers: { accept: 'application/json' },
        credentials: 'same-origin',
      });
    try {
      // Restart: stop (unless cold), then start, which follows the stop.
      const steps = action === 'restart' ? (row.dataset.state === 'cold' ? ['start'] : ['stop', 'start']) : [action];
      for (const step of steps) {
        const res = await post(step);
        if (!res.ok) {
          const body = await res.json().catch(() => ({}));
          showNotice(`Could not ${action} ${id}: ${body.error || `HTTP ${res.status}`}`);
          break;
        }
        showNotice('');
      }
    } catch (err) {
      showNotice(`Could not ${action} ${id}: ${err.message}`);
    }
    void refresh();
  });

  for (const t of list.querySelectorAll('time[datetime]')) t.textContent = localTime(Date.parse(t.dateTime));
  filterService.addEventListener('change', applyFilters);
  filterType.addEventListener('change', applyFilters);
  setInterval(tick, 1000);
  setInterval(() => {
    if (document.visibilityState === 'visible') void refresh();
  }, POLL_MS);
  connect();
})();
