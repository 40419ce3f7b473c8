/**
 * Secret masking for everything that shows configuration: `hestia check-config`, and API
 * answers that echo configured URLs (`/v1/strategies`). A masked value is `***`.
 *
 * What is masked (docs/security.md lists the same rules for users):
 *
 * - Schema keys that hold secrets (SECRET_KEYS: `semaphore_api_key`, `semaphore_password`,
 *   `password_hash`, …), wherever they appear.
 * - In maps whose keys the user chooses — `env` (process, slurm and docker launchers), `headers`
 *   (http launcher, http power actions) and anything inside a `body` — the value of every key
 *   whose *name* looks secret (isSecretName: contains `token`, `secret`, `password`, `passwd`,
 *   `credential`, `key`, `auth`, `cookie`, `session`, `private`, or has `pass`, `pwd`, `sig`,
 *   `signature` as a word). Header values of the form `Bearer …`/`Basic …`/`Token …` are
 *   masked whatever the header's name.
 * - In every string: URL userinfo (`http://user:***@host`) and the values of token-like query
 *   parameters (`?token=***`, `?api_token=***`, `?key=***`; same name rule).
 * - A string `body` that is JSON, or `a=b&c=d` form data, is masked key by key as above.
 * - Webhooks' `headers`: every value, whatever the header's name.
 *
 * Schema keys that merely *contain* such a word (`model_key`, `session_ttl_ms`, `auth`,
 * `host_key_sha256`) are not secrets and are shown: the name rule applies only to names the
 * user chose.
 */
import { SECRET_KEYS } from './schema.ts';

export const MASK = '***';

/** Parent keys whose children are user-chosen names (env variables, header names, body fields). */
const USER_NAMED_MAPS = new Set(['env', 'headers']);
/** Header names that always carry credentials. */
const CREDENTIAL_HEADERS = /^(authorization|proxy-authorization|x-api-key|cookie|set-cookie)$/i;
const SECRET_WORDS = /token|secret|passw(or)?d|credential|key|auth|cookie|session|private/i;
const SECRET_SEGMENTS = /(^|[^a-z0-9])(pass|pwd|sig|signature)([^a-z0-9]|$)/i;
/** `Bearer abc`, `Basic abc=`, `Token abc`: keep the scheme, hide the credential. */
const AUTH_SCHEME_VALUE = /^(bearer|basic|token|digest)\s+\S/i;

/** True when a user-chosen name (env variable, header, body field, query parameter) looks secret. */
export function isSecretName(name: string): boolean {
  return SECRET_WORDS.test(name) || SECRET_SEGMENTS.test(name);
}

/** A deep copy of a config (or any part of it) with every secret replaced by `***`. */
export function maskSecrets<T>(value: T): T {
  return mask(value, undefined, false) as T;
}

/** `http://user:pw@host/p?token=x&a=1` → `http://user:***@host/p?token=***&a=1`. Non-URLs unchanged. */
export function maskUrl(url: string): string {
  return maskText(url);
}

const URL_IN_TEXT = /\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi;

/** Mask URL userinfo and token-like query values inside free text (messages, commands). */
export function maskText(text: string): string {
  if (!text.includes('://')) return text;
  return text.replace(URL_IN_TEXT, (u) => maskOneUrl(u));
}

function maskOneUrl(raw: string): string {
  // Done on the text (not by URL re-serialisation) so templates like {host} stay as written.
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)(.*)$/is.exec(raw);
  if (!m) return raw;
  const [, scheme, authority = '', rest = ''] = m;
  let auth = authority;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    const colon = userinfo.indexOf(':');
    const masked = colon >= 0 ? `${userinfo.slice(0, colon)}:${MASK}` : MASK;
    auth = `${masked}${authority.slice(at)}`;
  }
  return `${scheme}${auth}${maskQuery(rest)}`;
}

/** Mask secret-named parameter values in the `?query` (and `#fragment`) part of a path. */
function maskQuery(pathAndQuery: string): string {
  const q = pathAndQuery.search(/[?#]/);
  if (q < 0) return pathAndQuery;
  return pathAndQuery.slice(0, q) + maskForm(pathAndQuery.slice(q));
}

/** `a=1&token=x` (with an optional leading `?`/`#`) → `a=1&token=***`. */
function maskForm(text: string): string {
  return text.replace(/([?#&;]|^)([^=&;#?]+)=([^&;#]*)/g, (all, sep: string, name: string, value: string) => {
    let decoded = name;
    try {
      decoded = decodeURIComponent(name);
    } catch {
      // a malformed escape: judge the raw name
    }
    return value !== '' && isSecretName(decoded) ? `${sep}${name}=${MASK}` : all;
  });
}

function maskBodyString(text: string): string {
  const t = text.trim();
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      return JSON.stringify(mask(JSON.parse(t) as unknown, undefined, true));
    } catch {
      // not JSON after all
    }
  }
  if (/^[^\s=&]+=[^\s&]*(&[^\s=&]+=[^\s&]*)*$/.test(t)) return maskForm(t);
  return maskText(text);
}

/**
 * `userNamed`: the keys of `value` (if it is an object) were chosen by the user (inside env,
 * headers or a body), so the name rule applies to them.
 */
function mask(value: unknown, key: string | undefined, userNamed: boolean): unknown {
  if (value === null || value === undefined) return value;
  if (key !== undefined) {
    if (SECRET_KEYS.has(key.toLowerCase())) return MASK;
    if (userNamed && (CREDENTIAL_HEADERS.test(key) || isSecretName(key))) return MASK;
  }
  if (typeof value === 'string') {
    if (key === 'body') return maskBodyString(value);
    if (userNamed && AUTH_SCHEME_VALUE.test(value)) return `${value.split(/\s+/, 1)[0]} ${MASK}`;
    return maskText(value);
  }
  if (key === 'webhooks' && Array.isArray(value)) return value.map(maskWebhook);
  if (Array.isArray(value)) return value.map((v) => mask(v, undefined, userNamed));
  if (typeof value === 'object') {
    const childrenUserNamed = userNamed || (key !== undefined && (USER_NAMED_MAPS.has(key) || key === 'body'));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = mask(v, k, childrenUserNamed);
    return out;
  }
  return value;
}

/**
 * A webhook (`webhooks: [{url, events, headers}]`): every header value is masked, whatever its
 * name: a receiver's headers exist to carry its credential (`X-Gotify-Key`, `X-Signature`, …).
 */
function maskWebhook(w: unknown): unknown {
  const out = mask(w, undefined, false);
  if (out === null || typeof out !== 'object' || Array.isArray(out)) return out;
  const headers = (out as { headers?: unknown }).headers;
  if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) return out;
  return { ...out, headers: Object.fromEntries(Object.keys(headers).map((k) => [k, MASK])) };
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
