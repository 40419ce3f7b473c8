/**
 * Dashboard password hashing with scrypt (node:crypto), encoded with its parameters so they can
 * be raised later without invalidating existing hashes:
 *
 *   scrypt$N$r$p$<salt base64>$<hash base64>
 *
 * Defaults: N = 2^15, r = 8, p = 1 (32 MiB, ~50–100 ms per hash on a small machine; the
 * parameters OWASP recommends for scrypt), 16-byte random salt, 32-byte output.
 */
import { randomBytes, type ScryptOptions, scrypt, timingSafeEqual } from 'node:crypto';

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
}

export const DEFAULT_SCRYPT: ScryptParams = { N: 2 ** 15, r: 8, p: 1 };
const SALT_BYTES = 16;
const HASH_BYTES = 32;

/**
 * Upper bounds on parameters read from an encoded hash: a hash comes from the config file, and
 * a typo such as N = 2^30 would otherwise make every login allocate a terabyte.
 */
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;

/** scrypt needs 128·N·r bytes; Node's default `maxmem` (32 MiB) is exactly too small for N=2^15, r=8. */
function maxmemFor({ N, r, p }: ScryptParams): number {
  return 128 * N * r * p + 1024 * 1024;
}

function scryptAsync(password: string, salt: Buffer, keylen: number, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: maxmemFor(params) };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  if (password.length === 0) throw new Error('password must not be empty');
  checkParams(params);
  const salt = randomBytes(SALT_BYTES);
  const hash = await scryptAsync(password, salt, HASH_BYTES, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export interface ParsedHash {
  params: ScryptParams;
  salt: Buffer;
  hash: Buffer;
}

/** Parse an encoded hash; returns an error sentence (never containing the hash) when invalid. */
export function parsePasswordHash(encoded: string): ParsedHash | { error: string } {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt')
    return { error: 'must look like scrypt$N$r$p$salt$hash (made by `hestia hash-password`)' };
  const [N, r, p] = parts.slice(1, 4).map((s) => (/^\d{1,10}$/.test(s) ? Number(s) : Number.NaN)) as [
    number,
    number,
    number,
  ];
  const params = { N, r, p };
  try {
    checkParams(params);
  } catch (err) {
    return { error: (err as Error).message };
  }
  const b64 = /^[A-Za-z0-9+/]+={0,2}$/;
  if (!b64.test(parts[4] ?? '') || !b64.test(parts[5] ?? '')) return { error: 'salt and hash must be base64' };
  const salt = Buffer.from(parts[4]!, 'base64');
  const hash = Buffer.from(parts[5]!, 'base64');
  if (salt.length < 8) return { error: 'salt must be at least 8 bytes' };
  if (hash.length < 16 || hash.length > 128) return { error: 'hash must be 16 to 128 bytes' };
  return { params, salt, hash };
}

function checkParams({ N, r, p }: ScryptParams): void {
  if (!Number.isInteger(N) || N < 2 || N > MAX_N || (N & (N - 1)) !== 0)
    throw new Error(`scrypt N must be a power of two between 2 and ${MAX_N}`);
  if (!Number.isInteger(r) || r < 1 || r > MAX_R) throw new Error(`scrypt r must be between 1 and ${MAX_R}`);
  if (!Number.isInteger(p) || p < 1 || p > MAX_P) throw new Error(`scrypt p must be between 1 and ${MAX_P}`);
}

/**
 * True when `password` matches the encoded hash. An unparsable hash is false (never a throw):
 * the config validation reports it at load time.
 */
export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const parsed = parsePasswordHash(encoded);
  if ('error' in parsed) return false;
  const candidate = await scryptAsync(password, parsed.salt, parsed.hash.length, parsed.params);
  return timingSafeEqual(candidate, parsed.hash);
}
