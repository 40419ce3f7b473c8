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

/** Shortest value treated as a secret in free text (shorter ones would mask ordinary words). */
const MIN_SECRET_LENGTH = 4;
/** Environment variable names whose values are secrets (a launcher's `env: {HF_TOKEN: …}`). */
const SECRET_ENV_NAME = /token|secret|passw|api_?key|credential|auth/i;

/**
 * Every secret value in a config: the values `maskSecrets` would hide (secret keys, credential
 * headers) and launcher `env` values whose names look secret. For masking free text (a service's
 * output), longest first.
 */
export function secretValues(value: unknown): string[] {
  const found = new Set<string>();
  const walk = (v: unknown, key?: string, inEnv = false): void => {
    if (typeof v === 'string') {
      const secretKey =
        key !== undefined &&
        (SECRET_KEYS.has(key.toLowerCase()) ||
          /^(authorization|x-api-key|cookie|proxy-authorization)$/i.test(key) ||
          (inEnv && SECRET_ENV_NAME.test(key)));
      if (secretKey && v.length >= MIN_SECRET_LENGTH) found.add(v);
      return;
    }
    if (Array.isArray(v)) for (const x of v) walk(x);
    else if (v !== null && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) walk(x, k, k === 'env' || (inEnv && typeof x !== 'object'));
  };
  walk(value);
  return [...found].sort((a, b) => b.length - a.length);
}

/** A function that replaces each of `secrets` in a text with `***` (identity when none). */
export function textMasker(secrets: readonly string[]): (text: string) => string {
  if (secrets.length === 0) return (text) => text;
  return (text) => {
    let out = text;
    for (const s of secrets) if (out.includes(s)) out = out.split(s).join('***');
    return out;
  };
}
