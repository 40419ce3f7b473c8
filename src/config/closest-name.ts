/**
 * "Did you mean …?": the known name closest to a mistyped one. A leaf module (no imports), so
 * the schema (webhook event names) and the config wording (validation.ts: unknown keys) share it.
 */

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
