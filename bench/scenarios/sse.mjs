/**
 * SSE: the upstream sends 20 events 50 ms apart, each in its own write. Through a streaming
 * proxy the client must see 20 separate bursts (one event each), not a few coalesced chunks or
 * one at the end; and the first event must arrive about as soon as when talking to the upstream
 * directly. Legs are interleaved per repetition; the client runs in this process (core 0) on a
 * fresh connection each time, so connection setup is included for every leg alike.
 */
import http from 'node:http';
import { nowMs } from '../lib/net.mjs';
import { median, percentile } from '../lib/stats.mjs';

const EVENTS = 20;
const INTERVAL_MS = 50;

function sseOnce(url, timeoutMs = 10_000) {
  return new Promise((resolve) => {
    const t0 = nowMs();
    const chunks = []; // { t, events } per 'data' read from the socket
    let buf = '';
    const req = http.get(url, { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (d) => {
        const t = nowMs();
        buf += d;
        let n = 0;
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          n++;
          buf = buf.slice(i + 2);
        }
        chunks.push({ t, events: n });
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve(analyse(t0, chunks, res));
      });
      res.on('error', (err) => resolve({ ok: false, error: err.message }));
    });
    const timer = setTimeout(() => req.destroy(new Error('timeout')), timeoutMs);
    req.on('error', (err) => resolve({ ok: false, error: err.message }));
  });
}

function accelHeader(raw) {
  const vals = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i].toLowerCase() === 'x-accel-buffering') vals.push(raw[i + 1]);
  if (vals.length === 0) return 'absent';
  return vals.length === 1 ? vals[0] : `${vals.join(', ')} (sent ${vals.length}×)`;
}

function analyse(t0, chunks, res) {
  // Chunks closer together than half the event interval belong to one burst.
  const bursts = [];
  for (const ch of chunks) {
    const last = bursts.at(-1);
    if (last && ch.t - last.tEnd < INTERVAL_MS / 2) {
      last.events += ch.events;
      last.tEnd = ch.t;
    } else bursts.push({ tStart: ch.t, tEnd: ch.t, events: ch.events });
  }
  const withEvents = bursts.filter((b) => b.events > 0);
  const events = withEvents.reduce((a, b) => a + b.events, 0);
  const first = withEvents[0];
  const gaps = withEvents.slice(1).map((b, i) => b.tStart - withEvents[i].tStart);
  return {
    ok: res.statusCode === 200,
    status: res.statusCode,
    // Raw occurrences: the upstream sends the header too, and a proxy that adds its own copy
    // without replacing the upstream's sends it twice (Node would join them as "no, no").
    accelBuffering: accelHeader(res.rawHeaders),
    events,
    bursts: withEvents.length,
    separate: withEvents.length === EVENTS && withEvents.every((b) => b.events === 1),
    firstEventMs: first ? first.tStart - t0 : null,
    maxGapMs: gaps.length ? Math.max(...gaps) : null,
  };
}

export async function runSse(ctx, stack) {
  const { opts, log } = ctx;
  const legs = stack.legs.filter((l) => !l.unavailable && l.node);
  const samples = Object.fromEntries(legs.map((l) => [l.id, []]));
  for (let r = 0; r < opts.sseRepeats; r++) {
    const k = r % legs.length;
    for (const leg of [...legs.slice(k), ...legs.slice(0, k)]) {
      const s = await sseOnce(`${leg.node}/sse?events=${EVENTS}&interval_ms=${INTERVAL_MS}`);
      samples[leg.id].push(s);
    }
  }
  const summary = legs.map((leg) => {
    const ss = samples[leg.id];
    const first = ss.map((s) => s.firstEventMs).filter((x) => x !== null);
    const row = {
      leg: leg.id,
      runs: ss.length,
      allOk: ss.every((s) => s.ok),
      allSeparate: ss.every((s) => s.separate),
      separateRuns: ss.filter((s) => s.separate).length,
      minBursts: Math.min(...ss.map((s) => s.bursts ?? 0)),
      events: ss.map((s) => s.events ?? 0),
      firstEventP50Ms: median(first),
      firstEventMaxMs: percentile(first, 100),
      maxGapMs: Math.max(...ss.map((s) => s.maxGapMs ?? 0)),
      accelBuffering: [...new Set(ss.map((s) => s.accelBuffering ?? '—'))].join(' / '),
      errors: ss.filter((s) => !s.ok).map((s) => s.error ?? `HTTP ${s.status}`),
    };
    log(
      `  sse ${leg.id.padEnd(6)} 20 separate bursts in ${row.separateRuns}/${row.runs} runs (fewest ${row.minBursts})  ` +
        `first event p50 ${row.firstEventP50Ms?.toFixed(2)} ms`,
    );
    return row;
  });
  // Verdict: a buffering proxy delivers the 20 events in one or a few bursts every time. On a
  // shared machine a descheduled process can occasionally deliver two events together, so a
  // leg passes when most runs show 20 separate bursts and none shows fewer than 15.
  for (const row of summary) row.streams = row.separateRuns * 2 > row.runs && row.minBursts >= 15;
  const direct = summary.find((s) => s.leg === 'direct');
  for (const row of summary) {
    row.firstEventVsDirectMs =
      direct && row.firstEventP50Ms !== null ? row.firstEventP50Ms - direct.firstEventP50Ms : null;
  }
  return { samples, summary };
}
