import { SECRET_KEYS } from './schema.ts';

/** A deep copy of a config with every secret value replaced by `***` (check-config output). */
export function maskSecrets<T>(value: T): T {
  return mask(value) as T;
}

function mask(value: unknown, key?: string): unknown {
  if (key !== undefined && SECRET_KEYS.has(key.toLowerCase()) && value !== null && value !== undefined) return '***';
  if (Array.isArray(value)) return value.map((v) => mask(v));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      // Header maps can carry credentials under any of these names.
      out[k] = /^(authorization|x-api-key|cookie|proxy-authorization)$/i.test(k) ? '***' : mask(v, k);
    }
    return out;
  }
  return value;
}
