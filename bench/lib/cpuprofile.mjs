/**
 * Summarise a V8 .cpuprofile (from `node --cpu-prof`): self time per function, inclusive time
 * per function (counted once per sample however deep the recursion), and self time per area
 * (Hestia's src/, undici, fastify, pino, Node's http internals, GC, ...).
 *
 * Self time uses the profile's timeDeltas (the real time between samples), not hitCount ×
 * interval, so a profile whose sampler fell behind under load is still weighted correctly.
 */

const IDLE = new Set(['(idle)', '(program)']);

export function summariseProfile(profile, { top = 20, windowBeforeEndMs = null } = {}) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  const self = new Map(); // node id -> µs
  const { samples, timeDeltas } = profile;
  // Sample times (µs, the profile's own clock). With windowBeforeEndMs = [a, b], only samples
  // taken between b and a ms before the profile's end count: the measured load, not start-up
  // (tsx compiling sources) or shutdown.
  let t = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i];
    if (windowBeforeEndMs) {
      const before = (profile.endTime - t) / 1000;
      if (before < windowBeforeEndMs[0] || before > windowBeforeEndMs[1]) continue;
    }
    // timeDeltas[i] is the time *before* sample i; attribute the next delta to this sample.
    const dt = timeDeltas[i + 1] ?? 0;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
  }

  const keyOf = (n) => {
    const f = n.callFrame;
    // Sources run through tsx arrive as one generated line: a line number there means nothing.
    const line = /\.[cm]?ts$/.test(f.url) ? '' : `:${f.lineNumber + 1}`;
    return `${f.functionName || '(anonymous)'}\t${shortUrl(f.url)}${line}`;
  };
  const selfByFn = new Map();
  const inclByFn = new Map();
  const areas = new Map();
  let total = 0;
  let busy = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    total += us;
    const name = n.callFrame.functionName;
    if (IDLE.has(name)) {
      areas.set(name, (areas.get(name) ?? 0) + us);
      continue;
    }
    busy += us;
    const k = keyOf(n);
    selfByFn.set(k, (selfByFn.get(k) ?? 0) + us);
    const a = areaOf(n.callFrame);
    areas.set(a, (areas.get(a) ?? 0) + us);
    // Inclusive: every distinct function on this sample's stack gets the sample's time.
    const seen = new Set();
    for (let p = id; p !== undefined; p = parent.get(p)) {
      const pk = keyOf(byId.get(p));
      if (seen.has(pk) || byId.get(p).callFrame.functionName === '(root)') continue;
      seen.add(pk);
      inclByFn.set(pk, (inclByFn.get(pk) ?? 0) + us);
    }
  }
  const rows = (m) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => {
        const [fn, where] = k.split('\t');
        return { fn, where: where ?? '', ms: us / 1000, pctBusy: busy > 0 ? (100 * us) / busy : 0 };
      });
  const inclusiveHestia = [...inclByFn.entries()]
    .filter(([k]) => k.includes('\tsrc/') || k.includes('\tdist/'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, us]) => {
      const [fn, where] = k.split('\t');
      return { fn, where, ms: us / 1000, pctBusy: busy > 0 ? (100 * us) / busy : 0 };
    });
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    idleMs: (total - busy) / 1000,
    topSelf: rows(selfByFn),
    areas: [...areas.entries()]
      .filter(([a]) => !IDLE.has(a))
      .sort((a, b) => b[1] - a[1])
      .map(([area, us]) => ({ area, ms: us / 1000, pctBusy: busy > 0 ? (100 * us) / busy : 0 })),
    inclusiveHestia,
  };
}

function shortUrl(url) {
  if (!url) return '(native)';
  const u = url.replace(/^file:\/\//, '');
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) return u.slice(nm + 'node_modules/'.length);
  const src = u.lastIndexOf('/src/');
  if (src >= 0) return u.slice(src + 1);
  // The dist/ bundle (what an install runs): the same module tree as src/.
  const dist = u.lastIndexOf('/dist/');
  if (dist >= 0) return u.slice(dist + 1);
  return u;
}

function areaOf(f) {
  const u = f.url ?? '';
  if (f.functionName === '(garbage collector)') return 'GC';
  if (!u) return 'native / V8 builtins';
  if (u.startsWith('wasm://')) return "wasm (undici's llhttp parser)";
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (m) return m[1];
  if (u.startsWith('node:internal/http') || u.startsWith('node:_http') || u === 'node:http') return 'node http';
  if (u.startsWith('node:internal/streams') || u.startsWith('node:stream')) return 'node streams';
  if (u === 'node:net' || u.startsWith('node:internal/net') || u.startsWith('node:internal/stream_base'))
    return 'node net';
  if (u === 'node:events' || u.startsWith('node:internal/event')) return 'node events';
  if (u.startsWith('node:internal/process/task_queues') || u.startsWith('node:internal/timers'))
    return 'node task queues / timers';
  if (u.startsWith('node:')) return 'node (other)';
  const src = /\/(?:src|dist)\/([^/]+)\//.exec(u);
  if (src) return `hestia src/${src[1]}`;
  return shortUrl(u);
}

/** Markdown for a summary. */
export function profileMarkdown(s, { top = 15 } = {}) {
  const lines = [];
  lines.push(`Busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms sampled.`, '');
  lines.push('| area | self ms | % of busy |', '| --- | ---: | ---: |');
  for (const a of s.areas.slice(0, 12)) lines.push(`| ${a.area} | ${a.ms.toFixed(0)} | ${a.pctBusy.toFixed(1)} |`);
  lines.push('', '| # | function (self time) | where | self ms | % of busy |', '| ---: | --- | --- | ---: | ---: |');
  s.topSelf.slice(0, top).forEach((r, i) => {
    lines.push(`| ${i + 1} | \`${r.fn}\` | ${r.where} | ${r.ms.toFixed(0)} | ${r.pctBusy.toFixed(1)} |`);
  });
  if (s.inclusiveHestia.length) {
    lines.push('', '| Hestia function (inclusive) | where | ms | % of busy |', '| --- | --- | ---: | ---: |');
    for (const r of s.inclusiveHestia.slice(0, 10)) {
      lines.push(`| \`${r.fn}\` | ${r.where} | ${r.ms.toFixed(0)} | ${r.pctBusy.toFixed(1)} |`);
    }
  }
  return lines.join('\n');
}
