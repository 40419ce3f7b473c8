/** Small statistics helpers (no dependencies). */

export function percentile(values, p) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  // Nearest-rank: the smallest value with at least p% of the data at or below it.
  const rank = Math.max(1, Math.ceil((p / 100) * v.length));
  return v[rank - 1];
}

export const median = (values) => percentile(values, 50);

export function sum(values) {
  return values.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
}

/** Format a number with `digits` decimals, or '—' for null/NaN. */
export function fmt(x, digits = 0) {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  return x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
