/**
 * A strict parser of the Prometheus text exposition format 0.0.4, for tests: it throws on
 * anything a Prometheus server would reject or that breaks the format's rules, rather than
 * skipping it.
 *
 * Checked: line grammar (metric and label names, quoted and escaped label values, float values
 * incl. NaN/±Inf), HELP/TYPE at most once per family and TYPE before its samples, samples of a
 * family contiguous, sample names allowed by the family type (histogram: _bucket/_sum/_count),
 * no duplicate series, no duplicate or reserved (`__`) label names, and for every histogram
 * series: `le` present and increasing, cumulative counts non-decreasing, a `+Inf` bucket equal
 * to `_count`, and a `_sum`. Counters must not be negative. The text must end with a newline.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string | null;
  samples: Sample[];
}

export interface Exposition {
  families: Map<string, Family>;
  samples: Sample[];
  /** The value of the one sample with exactly these labels, or undefined. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Sum over samples of `name` whose labels include `match`. */
  sum(name: string, match?: Record<string, string>): number;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function fail(lineNo: number, line: string, why: string): never {
  throw new Error(`exposition line ${lineNo}: ${why}: ${JSON.stringify(line)}`);
}

function parseValue(raw: string, lineNo: number, line: string): number {
  if (raw === 'NaN') return Number.NaN;
  if (raw === '+Inf' || raw === 'Inf') return Number.POSITIVE_INFINITY;
  if (raw === '-Inf') return Number.NEGATIVE_INFINITY;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(raw)) fail(lineNo, line, `bad value ${raw}`);
  return Number(raw);
}

/** Parse `{a="x",b="y"}` starting at `i` (which is `{`); returns labels and the index after `}`. */
function parseLabels(line: string, i: number, lineNo: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  i++; // {
  for (;;) {
    if (line[i] === '}') return { labels, end: i + 1 };
    const eq = line.indexOf('=', i);
    if (eq < 0) fail(lineNo, line, 'label without =');
    const name = line.slice(i, eq);
    if (!LABEL_NAME.test(name)) fail(lineNo, line, `bad label name ${name}`);
    if (name.startsWith('__')) fail(lineNo, line, `reserved label name ${name}`);
    if (name in labels) fail(lineNo, line, `duplicate label ${name}`);
    if (line[eq + 1] !== '"') fail(lineNo, line, 'label value not quoted');
    let j = eq + 2;
    let value = '';
    for (;;) {
      const c = line[j];
      if (c === undefined) fail(lineNo, line, 'unterminated label value');
      if (c === '"') break;
      if (c === '\\') {
        const n = line[j + 1];
        if (n === '\\') value += '\\';
        else if (n === '"') value += '"';
        else if (n === 'n') value += '\n';
        else fail(lineNo, line, `bad escape \\${n}`);
        j += 2;
        continue;
      }
      value += c;
      j++;
    }
    labels[name] = value;
    i = j + 1;
    if (line[i] === ',') {
      i++;
      // A trailing comma before } is allowed by the format.
      continue;
    }
    if (line[i] !== '}') fail(lineNo, line, 'expected , or } after a label');
  }
}

function seriesKey(name: string, labels: Record<string, string>, omit?: string): string {
  const keys = Object.keys(labels)
    .filter((k) => k !== omit)
    .sort();
  return `${name}{${keys.map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',')}}`;
}

function familyOf(sampleName: string, families: Map<string, Family>): Family | undefined {
  const direct = families.get(sampleName);
  if (direct) return direct;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sampleName.endsWith(suffix)) continue;
    const f = families.get(sampleName.slice(0, -suffix.length));
    if (f && (f.type === 'histogram' || f.type === 'summary')) return f;
  }
  return undefined;
}

export function parseExposition(text: string): Exposition {
  if (text.length > 0 && !text.endsWith('\n')) throw new Error('exposition does not end with a newline');
  const families = new Map<string, Family>();
  const samples: Sample[] = [];
  const seen = new Set<string>();
  const finished = new Set<string>();
  const typed = new Set<string>();
  let current: string | null = null;
  const lines = text.split('\n');
  lines.pop();
  lines.forEach((line, idx) => {
    const lineNo = idx + 1;
    if (line === '') return;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) return; // a plain comment
      const [, kind, name, rest] = m as unknown as [string, string, string, string];
      if (!METRIC_NAME.test(name)) fail(lineNo, line, `bad metric name ${name}`);
      let f = families.get(name);
      if (!f) {
        f = { name, type: 'untyped', help: null, samples: [] };
        families.set(name, f);
      }
      if (f.samples.length > 0) fail(lineNo, line, `${kind} after samples of ${name}`);
      if (kind === 'HELP') {
        if (f.help !== null) fail(lineNo, line, `second HELP for ${name}`);
        f.help = rest;
      } else {
        if (!TYPES.has(rest)) fail(lineNo, line, `bad type ${rest}`);
        if (typed.has(name)) fail(lineNo, line, `second TYPE for ${name}`);
        f.type = rest as Family['type'];
        typed.add(name);
      }
      return;
    }
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd <= 0) fail(lineNo, line, 'no metric name');
    const name = line.slice(0, nameEnd);
    if (!METRIC_NAME.test(name)) fail(lineNo, line, `bad metric name ${name}`);
    let labels: Record<string, string> = {};
    let i = nameEnd;
    if (line[i] === '{') ({ labels, end: i } = parseLabels(line, i, lineNo));
    if (line[i] !== ' ') fail(lineNo, line, 'expected a space before the value');
    const parts = line.slice(i + 1).split(' ');
    if (parts.length < 1 || parts.length > 2) fail(lineNo, line, 'expected value [timestamp]');
    const value = parseValue(parts[0]!, lineNo, line);
    if (parts[1] !== undefined && !/^-?\d+$/.test(parts[1])) fail(lineNo, line, 'bad timestamp');

    let fam = familyOf(name, families);
    if (!fam) {
      fam = { name, type: 'untyped', help: null, samples: [] };
      families.set(name, fam);
    }
    if (fam.type === 'histogram') {
      if (!/_(bucket|sum|count)$/.test(name) || name.slice(0, name.lastIndexOf('_')) !== fam.name)
        fail(lineNo, line, `sample ${name} not allowed in histogram ${fam.name}`);
      if (name.endsWith('_bucket') && labels.le === undefined) fail(lineNo, line, 'bucket without le');
    } else if (fam.type === 'counter' || fam.type === 'gauge') {
      if (name !== fam.name) fail(lineNo, line, `sample ${name} in ${fam.type} ${fam.name}`);
      if (fam.type === 'counter' && !(value >= 0)) fail(lineNo, line, 'negative or NaN counter');
    }
    if (current !== fam.name) {
      if (finished.has(fam.name)) fail(lineNo, line, `samples of ${fam.name} are not contiguous`);
      if (current !== null) finished.add(current);
      current = fam.name;
    }
    const key = seriesKey(name, labels);
    if (seen.has(key)) fail(lineNo, line, `duplicate series ${key}`);
    seen.add(key);
    const sample = { name, labels, value };
    fam.samples.push(sample);
    samples.push(sample);
  });

  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);

  return {
    families,
    samples,
    value(name, labels = {}) {
      const want = seriesKey(name, labels);
      return samples.find((s) => seriesKey(s.name, s.labels) === want)?.value;
    },
    sum(name, match = {}) {
      return samples
        .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
        .reduce((a, s) => a + s.value, 0);
    },
  };
}

function checkHistogram(f: Family): void {
  const series = new Map<string, { buckets: Array<[number, number]>; sum?: number; count?: number }>();
  for (const s of f.samples) {
    const key = seriesKey(f.name, s.labels, 'le');
    let h = series.get(key);
    if (!h) {
      h = { buckets: [] };
      series.set(key, h);
    }
    if (s.name.endsWith('_bucket')) h.buckets.push([parseValue(s.labels.le!, 0, s.labels.le!), s.value]);
    else if (s.name.endsWith('_sum')) h.sum = s.value;
    else h.count = s.value;
  }
  for (const [key, h] of series) {
    if (h.count === undefined || h.sum === undefined) throw new Error(`histogram ${key}: missing _count or _sum`);
    for (let i = 1; i < h.buckets.length; i++) {
      const [le0, c0] = h.buckets[i - 1]!;
      const [le1, c1] = h.buckets[i]!;
      if (!(le1 > le0)) throw new Error(`histogram ${key}: le not increasing (${le0}, ${le1})`);
      if (c1 < c0) throw new Error(`histogram ${key}: bucket counts decrease at le=${le1}`);
    }
    const last = h.buckets.at(-1);
    if (!last || last[0] !== Number.POSITIVE_INFINITY) throw new Error(`histogram ${key}: no +Inf bucket`);
    if (last[1] !== h.count) throw new Error(`histogram ${key}: +Inf bucket ${last[1]} != _count ${h.count}`);
  }
}
