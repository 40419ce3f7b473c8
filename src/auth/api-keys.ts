/**
 * API keys: generation, hashing, and reading a presented key from request headers.
 *
 * A key looks like `hst_<43 base64url chars>`: the `hst_` prefix makes a leaked key
 * recognisable (secret scanners, log reviews); the rest is 32 bytes (256 bits) from the
 * OS CSPRNG. Only the SHA-256 digest of a key is ever stored (SQLite or `auth.api_keys`).
 *
 * Why plain SHA-256 and not scrypt/argon2: password hashes are slow and salted because
 * passwords are low-entropy and can be guessed from a dictionary. A 256-bit random key cannot
 * be guessed, so an unsalted fast hash already makes the stored digest useless to whoever reads
 * the database (recovering the key would mean a SHA-256 preimage), and a fast hash lets every
 * request be checked in about a microsecond instead of tens of milliseconds. (This reasoning
 * only holds for generated keys: a key hashed into the config by hand should be random too.)
 *
 * Why looking a digest up in a Map / SQLite index is safe against timing attacks: the lookup's
 * timing depends on the digest of what the client sent, not on the client's bytes directly. To
 * use timing to learn a stored digest byte by byte, an attacker would have to choose inputs
 * whose SHA-256 starts with chosen bytes (a preimage search), and even a fully learned digest
 * does not give back the key. The final comparison is still done with `timingSafeEqual`.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export const KEY_PREFIX = 'hst_';
/** Random bytes per key: 256 bits. */
export const KEY_BYTES = 32;
/**
 * Characters of a key shown by `keys list` to identify it (`hst_` + 8 random characters,
 * 48 bits): enough to tell keys apart, far too few to help a guess at the other 208 bits.
 */
export const DISPLAY_PREFIX_LENGTH = KEY_PREFIX.length + 8;

/** Longest header value considered as a key: longer values are rejected before hashing. */
const MAX_KEY_LENGTH = 512;

export interface GeneratedKey {
  /** The plaintext key: shown to the user once, never stored. */
  key: string;
  /** The identifying start of the key, safe to display and store. */
  prefix: string;
  /** Lower-case hex SHA-256 of the key: what is stored. */
  sha256: string;
}

export function generateApiKey(): GeneratedKey {
  const key = KEY_PREFIX + randomBytes(KEY_BYTES).toString('base64url');
  return { key, prefix: displayPrefix(key), sha256: hashApiKey(key) };
}

export function displayPrefix(key: string): string {
  return key.slice(0, DISPLAY_PREFIX_LENGTH);
}

/** Lower-case hex SHA-256 of a key (UTF-8). */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** Constant-time equality of two hex digests (false, not a throw, when lengths differ). */
export function digestsEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a, 'hex');
  const bb = Buffer.from(b, 'hex');
  return ba.length === bb.length && ba.length > 0 && timingSafeEqual(ba, bb);
}

/** Where the presented key came from; decides what `stripGatewayCredentials` removes. */
export type KeySource = 'x-api-key' | 'authorization';

export type PresentedKey =
  | { kind: 'none' }
  /** Something that cannot be a key (empty, too long, control characters). */
  | { kind: 'malformed'; source: KeySource }
  | { kind: 'key'; source: KeySource; key: string };

type HeaderValue = string | string[] | undefined;
export type HeaderBag = Readonly<Record<string, HeaderValue>>;

/**
 * Read the gateway key from request headers (node:http lower-cases header names).
 *
 * `X-API-Key` wins when present; otherwise `Authorization: Bearer <key>` (scheme
 * case-insensitive, RFC 7235). Any other Authorization scheme (Basic, Digest, …) is not a
 * gateway credential: it is reported as `none` and belongs to the upstream.
 */
export function readPresentedKey(headers: HeaderBag): PresentedKey {
  const x = headers['x-api-key'];
  if (x !== undefined) {
    // node:http joins repeated X-API-Key headers with ", " — which is then malformed.
    const v = (Array.isArray(x) ? x.join(', ') : x).trim();
    return isPlausibleKey(v)
      ? { kind: 'key', source: 'x-api-key', key: v }
      : { kind: 'malformed', source: 'x-api-key' };
  }
  const bearer = bearerToken(headers.authorization);
  if (bearer === null) return { kind: 'none' };
  return isPlausibleKey(bearer)
    ? { kind: 'key', source: 'authorization', key: bearer }
    : { kind: 'malformed', source: 'authorization' };
}

/** The token of an `Authorization: Bearer <token>` header, or null for any other value. */
export function bearerToken(value: HeaderValue): string | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (v === undefined) return null;
  const m = /^[ \t]*bearer[ \t]+(.*?)[ \t]*$/i.exec(v);
  return m ? (m[1] ?? '') : null;
}

function isPlausibleKey(v: string): boolean {
  // Visible ASCII only: no spaces, commas from joined headers, or control characters.
  return v.length > 0 && v.length <= MAX_KEY_LENGTH && /^[\x21-\x7e]+$/.test(v) && !v.includes(',');
}
