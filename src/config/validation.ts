/**
 * Wording of config problems (resolve.ts): what type was expected, what was given, and the
 * closest known key for a typo ("did you mean idle_timeout_ms?"). Values echoed back are
 * masked (mask.ts): a config error must not print a password from a URL.
 */
import { maskText } from './mask.ts';

export { maskText };

/** `string` → `a string`, `array` → `a list`, … (zod's `expected` names in a user's words). */
export function expectedNoun(expected: string): string {
  switch (expected) {
    case 'string':
      return 'a string';
    case 'number':
    case 'int':
      return 'a number';
    case 'boolean':
      return 'a boolean (true/false)';
    case 'array':
      return 'a list';
    case 'object':
    case 'record':
    case 'map':
      return 'a mapping';
    default:
      return `of type ${expected}`;
  }
}

/** The value a user wrote, for "got …": scalars as written (masked), containers by kind. */
export function describeValue(v: unknown): string {
  if (v === null) return 'an empty value';
  if (Array.isArray(v)) return `a list (${JSON.stringify(v).slice(0, 60)})`;
  if (typeof v === 'object') return 'a mapping';
  const text = JSON.stringify(v) ?? String(v);
  return maskText(text.length > 80 ? `${text.slice(0, 77)}…"` : text);
}

interface UnionBranchIssue {
  code: string;
  path: readonly PropertyKey[];
  expected?: string;
}

/**
 * What a union accepts, from zod's per-branch issues: `a string or a list of strings`. Null when
 * a branch failed for another reason than its type (then its own issue says more).
 */
export function describeUnion(branches: readonly (readonly UnionBranchIssue[])[]): string | null {
  const nouns: string[] = [];
  for (const issues of branches) {
    const first = issues[0];
    if (first?.code !== 'invalid_type' || first.expected === undefined) return null;
    let noun: string;
    if (first.path.length === 0) noun = expectedNoun(first.expected);
    else if (first.path.length === 1 && typeof first.path[0] === 'number')
      noun = `a list of ${expectedNoun(first.expected).replace(/^an? /, '')}s`;
    else return null;
    if (!nouns.includes(noun)) nouns.push(noun);
  }
  return nouns.length > 0 ? nouns.join(' or ') : null;
}

/** Damerau–Levenshtein (optimal string alignment) distance, case-insensitive. */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  const d: number[][] = Array.from({ length: s.length + 1 }, (_, i) =>
    Array.from({ length: t.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= s.length; i++)
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      const row = d[i] as number[];
      const prev = d[i - 1] as number[];
      let v = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1])
        v = Math.min(v, ((d[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = v;
    }
  return (d[s.length] as number[])[t.length] as number;
}

/**
 * The known key closest to a mistyped one, or null when none is close: at most a quarter of
 * the key's length in edits (at least 1, at most 3), or the same words in another case or
 * separator (`idleTimeoutMs`, `idle-timeout-ms`).
 */
export function closestKey(key: string, known: readonly string[]): string | null {
  const norm = (k: string) => k.toLowerCase().replace(/[-_\s]/g, '');
  const same = known.find((k) => norm(k) === norm(key));
  if (same) return same;
  const limit = Math.min(3, Math.max(1, Math.floor(key.length / 4)));
  let best: string | null = null;
  let bestD = Number.POSITIVE_INFINITY;
  for (const k of known) {
    const dist = editDistance(key, k);
    if (dist <= limit && dist < bestD) {
      best = k;
      bestD = dist;
    }
  }
  return best;
}
