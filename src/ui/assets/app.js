// The dashboard's behaviour (served as /ui/app.js; plain browser JavaScript, no build step).
// The page arrives complete from the server (src/ui/page.ts); this script keeps it live:
// - one poll of /v1/dashboard every POLL_MS (and after each event) brings every service's status,
//   the machines (capacity, allocation, live resources) and the request timelines; the timelines
//   are asked for from the last bucket held, so a poll stays small with hundreds of services;
// - per service, two small uPlot charts (requests/errors per second, latency p50/p95 over 15
//   minutes), drawn only for rows on screen (IntersectionObserver), and the cold-start time;
// - the event stream (/v1/events/stream, SSE) prepends events; it and the output stream reconnect
//   by themselves when the gateway restarts (EventSource's own retry, and a new EventSource
//   after a refusal closed it);
// - "last used" and the idle countdown tick every second;
// - Start/Stop buttons POST /v1/services/{id}/start|stop; Restart is a stop then a start (a start
//   asked while stopping follows the stop). With auth on, the session cookie authorises them and
//   fetch() sends the same-origin Origin header the CSRF rule asks for;
// - "Output" follows one service's output (/v1/services/{id}/logs/stream, SSE) in the panel;
// - events can be filtered by service and type; runs of auth_denied / queue_rejected are one
//   line with a count (as the server renders them).
// duration/ago/describe mirror src/ui/page.ts; the policy line (policyLine) and the machines panel
// (machinesHtml) come rendered from the server.

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

  function brief(ms) {
    return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
  }

  function readyText(d) {
    const head = `ready after ${(d.coldStartMs / 1000).toFixed(1)} s`;
    const [before, call, after] = [d.launchAfterMs, d.launchTookMs, d.readyAfterMs];
    if (typeof before !== 'number' || typeof call !== 'number' || typeof after !== 'number') return head;
    return `${head}: launch ${brief(before + call)}, its own start-up ${brief(after)}`;
  }

  function describe(ev) {
    const d = ev.details || {};
    if (ev.type === 'service_ready' && typeof d.coldStartMs === 'number') return readyText(d);
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
    const policy = document.createElement('span');
    policy.className = 'policy';
    policy.dataset.field = 'policy';
    th.append(a, policy);
    row.append(th);
    for (const field of [
      'state',
      'machine',
      'inflight',
      'queued',
      'traffic',
      'latency',
      'coldStart',
      'used',
      'lastError',
    ]) {
      const td = document.createElement('td');
      td.dataset.field = field;
      if (field === 'inflight' || field === 'queued' || field === 'coldStart') td.className = 'num';
      if (field === 'traffic' || field === 'latency') {
        td.className = 'chart';
        const f = document.createElement('span');
        f.className = 'figure muted';
        f.textContent = field === 'traffic' ? 'no traffic' : '—';
        td.append(f);
      }
      if (field === 'lastError') td.className = 'error';
      if (field === 'used') {
        // Last used, and the idle countdown under it (as the server renders it).
        td.removeAttribute('data-field');
        td.className = 'used';
        const used = document.createElement('span');
        used.dataset.field = 'lastUsed';
        const idle = document.createElement('span');
        idle.dataset.field = 'idle';
        idle.className = 'muted';
        idle.title = 'idle stop in';
        td.append(used, document.createElement('br'), idle);
      }
      row.append(td);
    }
    const state = document.createElement('span');
    cell(row, 'state').append(state);
    const actions = document.createElement('td');
    actions.className = 'actions';
    const labels = { start: 'Start', stop: 'Stop', restart: 'Restart', logs: 'Logs' };
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
    rowObserver?.observe(row);
    return row;
  }

  function render(row, s, now, at) {
    const state = cell(row, 'state').firstElementChild;
    const shown = s.state === 'cold' && s.paused === true ? 'paused' : s.state;
    state.textContent = shown;
    state.className = `state state-${shown}`;
    row.dataset.state = s.state;
    cell(row, 'policy').textContent = s.policyLine ?? '';
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
      const since = timelineFrom === null ? '' : `?since=${timelineFrom}`;
      const res = await fetch(`/v1/dashboard${since}`, {
        headers: { accept: 'application/json' },
        credentials: 'same-origin',
      });
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
          timelines.delete(row.dataset.service);
          dropCharts(row.dataset.service);
          row.remove();
        }
      }
      mergeTimeline(body.timeline, seen);
      renderMachines(body.machinesHtml);
      drawVisible();
      if (events && events.readyState === EventSource.OPEN) setLive(true, 'live');
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

  // --- Timelines and charts -------------------------------------------------------------------

  /** id -> Map(bucket number -> [count, errors, p50, p95]). */
  const timelines = new Map();
  /** id -> {lastMs, typicalMs, samples, at}. */
  const coldStarts = new Map();
  /** Epoch ms to ask the next timeline from (the last bucket held); null = the whole window. */
  let timelineFrom = null;
  let bucketMs = 10000;
  let windowBuckets = 90;
  let currentBucket = 0;
  /** id -> {traffic: uPlot, latency: uPlot}. */
  const charts = new Map();
  /** Rows on screen (only they get charts). */
  const onScreen = new Set();
  const rowObserver =
    typeof IntersectionObserver === 'function'
      ? new IntersectionObserver((entries) => {
          for (const e of entries) {
            const id = e.target.dataset.service;
            if (!id) continue;
            if (e.isIntersecting) onScreen.add(id);
            else onScreen.delete(id);
          }
          drawVisible();
        })
      : null;

  function mergeTimeline(tl, configured) {
    if (!tl) return;
    bucketMs = tl.bucketMs;
    const first = Math.floor(tl.start / bucketMs);
    currentBucket = first + tl.buckets - 1;
    if (timelineFrom === null) windowBuckets = tl.buckets;
    for (const [id, s] of Object.entries(tl.services)) {
      let m = timelines.get(id);
      if (!m) {
        m = new Map();
        timelines.set(id, m);
      }
      // Sparse: the buckets listed had requests; the others in the range had none.
      for (let b = first; b <= currentBucket; b++) m.delete(b);
      for (let i = 0; i < s.at.length; i++) m.set(first + s.at[i], [s.count[i], s.errors[i], s.p50[i], s.p95[i]]);
    }
    // Services absent from the answer had no request in the buckets it covered.
    for (const [id, m] of timelines) {
      if (!tl.services[id]) for (let b = first; b <= currentBucket; b++) m.delete(b);
      for (const b of m.keys()) if (b <= currentBucket - windowBuckets) m.delete(b);
      if (m.size === 0 && !configured.has(id)) timelines.delete(id);
    }
    // A poll from the last bucket carries only the cold starts since then: merge.
    for (const [id, c] of Object.entries(tl.coldStarts)) coldStarts.set(id, c);
    for (const id of coldStarts.keys()) if (!configured.has(id)) coldStarts.delete(id);
    timelineFrom = currentBucket * bucketMs;
    for (const row of tbody.rows) {
      const id = row.dataset.service;
      if (!id) continue;
      const c = coldStarts.get(id);
      const td = cell(row, 'coldStart');
      if (!td) continue;
      td.textContent = c ? `${seconds(c.lastMs)} / ${seconds(c.typicalMs)}` : '—';
      td.title = c ? `last ${seconds(c.lastMs)}, typical (median of ${c.samples}) ${seconds(c.typicalMs)}` : '';
    }
  }

  function seconds(ms) {
    return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
  }

  function millis(v) {
    return v === null || v === undefined ? '—' : v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`;
  }

  /** uPlot's data for one service: x (s), req/s, err/s, p50, p95 over the whole window. */
  function chartData(id) {
    const m = timelines.get(id) || new Map();
    const xs = [];
    const rate = [];
    const errs = [];
    const p50 = [];
    const p95 = [];
    for (let b = currentBucket - windowBuckets + 1; b <= currentBucket; b++) {
      const v = m.get(b);
      xs.push((b * bucketMs) / 1000);
      rate.push(v ? v[0] / (bucketMs / 1000) : 0);
      errs.push(v ? v[1] / (bucketMs / 1000) : 0);
      p50.push(v ? v[2] : null);
      p95.push(v ? v[3] : null);
    }
    return { traffic: [xs, rate, errs], latency: [xs, p50, p95] };
  }

  /** The last minute of one service, as a sentence. */
  function summary(id) {
    const m = timelines.get(id);
    let count = 0;
    let errors = 0;
    let p50 = null;
    let p95 = null;
    const perMinute = Math.max(1, Math.round(60000 / bucketMs));
    for (let b = currentBucket; b > currentBucket - perMinute; b--) {
      const v = m?.get(b);
      if (!v) continue;
      count += v[0];
      errors += v[1];
      if (p50 === null && v[2] !== null) {
        p50 = v[2];
        p95 = v[3];
      }
    }
    const rate = count / ((perMinute * bucketMs) / 1000);
    return {
      traffic:
        count === 0
          ? 'idle'
          : `${rate < 1 ? `${count}/min` : `${rate < 10 ? rate.toFixed(1) : Math.round(rate)}/s`}${errors ? `, ${Math.round((errors / count) * 100)} % err` : ''}`,
      latency: p50 === null ? '—' : `${millis(p50)} / ${millis(p95)}`,
    };
  }

  const SPARK = { width: 96, height: 28 };
  function sparkOptions(series) {
    return {
      ...SPARK,
      pxAlign: false,
      cursor: { show: false },
      legend: { show: false },
      select: { show: false },
      scales: { x: { time: false } },
      axes: [{ show: false }, { show: false }],
      series: [{}, ...series],
    };
  }

  function ensureCharts(id, row) {
    let c = charts.get(id);
    if (c) return c;
    if (typeof uPlot !== 'function') return null;
    const data = chartData(id);
    const make = (field, series, d) => {
      const td = cell(row, field);
      const box = document.createElement('div');
      box.className = 'spark';
      td.prepend(box);
      return new uPlot(sparkOptions(series), d, box);
    };
    c = {
      traffic: make(
        'traffic',
        [
          { stroke: '#16a34a', fill: 'rgba(22,163,74,0.15)', width: 1, points: { show: false } },
          { stroke: '#dc2626', width: 1, points: { show: false } },
        ],
        data.traffic,
      ),
      latency: make(
        'latency',
        [
          { stroke: '#2563eb', width: 1, spanGaps: true, points: { show: true, size: 3 } },
          { stroke: '#ea580c', width: 1, spanGaps: true, points: { show: true, size: 3 } },
        ],
        data.latency,
      ),
    };
    charts.set(id, c);
    return c;
  }

  function dropCharts(id) {
    const c = charts.get(id);
    if (!c) return;
    c.traffic.destroy();
    c.latency.destroy();
    charts.delete(id);
  }

  /** Update the charts of the rows on screen (and create them for rows that now have traffic). */
  function drawVisible() {
    for (const id of rowObserver ? onScreen : known.keys()) {
      const row = rowOf(id);
      if (!row) continue;
      const has = timelines.get(id)?.size > 0;
      const sum = summary(id);
      const traffic = cell(row, 'traffic');
      const latency = cell(row, 'latency');
      traffic.querySelector('.figure').textContent = sum.traffic;
      latency.querySelector('.figure').textContent = sum.latency;
      traffic.dataset.buckets = String(timelines.get(id)?.size ?? 0);
      if (!has && !charts.has(id)) continue;
      const c = ensureCharts(id, row);
      if (!c) continue;
      const data = chartData(id);
      c.traffic.setData(data.traffic);
      c.latency.setData(data.latency);
    }
  }

  // --- Machines: the server renders the panel (src/ui/machines-panel.ts, machinesHtml) -------------

  const machinesBox = document.getElementById('machines');
  let machinesHtml = '';

  function renderMachines(html) {
    if (!machinesBox || typeof html !== 'string' || html === machinesHtml) return;
    machinesHtml = html;
    machinesBox.innerHTML = html;
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
      logTitle.textContent = `of ${id}`;
    };
    es.onmessage = (m) => appendLog(JSON.parse(m.data));
    es.onerror = () => {
      if (es.readyState !== EventSource.CLOSED || logStream !== es) return;
      // Refused (e.g. the gateway answered 503 while restarting): try again shortly.
      logTitle.textContent = `of ${id} (reconnecting…)`;
      setTimeout(() => {
        if (logStream === es) followLogs(id);
      }, 3000);
    };
  }

  /** The event stream (re-created when a refusal closed it). */
  let events = null;
  function connect() {
    const since = Number(list.dataset.lastId || '0');
    const es = new EventSource(`/v1/events/stream${since > 0 ? `?since=${since}` : ''}`);
    events = es;
    es.onopen = () => {
      setLive(true, 'live');
      void refresh();
    };
    es.onmessage = (m) => {
      const ev = JSON.parse(m.data);
      if (ev.id !== null) {
        // Already shown (a replay after a reconnect): skip.
        if (ev.id <= Number(list.dataset.lastId || '0')) return;
        list.dataset.lastId = String(ev.id);
      }
      addEvent(ev);
      void refresh();
    };
    es.onerror = () => {
      // EventSource reconnects by itself (sending Last-Event-ID) unless the server refused it
      // (a non-200 answer while the gateway restarts): then open a new one after a pause.
      setLive(false, 'reconnecting…');
      if (es.readyState === EventSource.CLOSED && events === es) setTimeout(connect, 3000);
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
  for (const row of tbody.rows) if (row.dataset.service) rowObserver?.observe(row);
  setInterval(tick, 1000);
  setInterval(() => {
    if (document.visibilityState === 'visible') void refresh();
  }, POLL_MS);
  connect();
})();
