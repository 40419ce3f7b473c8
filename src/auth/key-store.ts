/**
 * API keys in SQLite (`hestia keys create|list|revoke` and the gateway share the same file).
 *
 * The table holds digests only, never a key. Revoked keys keep their row (so `keys list` shows
 * them and a request with one is logged as `revoked_key`, which helps an operator tell a stale
 * client from an attacker) until a new key reuses the name.
 *
 * The gateway reads this table on each authenticated request (one indexed lookup by digest, a few
 * microseconds with a prepared statement), so a key created or revoked by the CLI in another
 * process takes effect on the next request without a reload.
 */
import type { Database } from 'better-sqlite3';

export interface StoredKey {
  name: string;
  prefix: string;
  sha256: string;
  /** Service ids this key may use; null = all. */
  services: string[] | null;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

interface Row {
  name: string;
  prefix: string;
  sha256: string;
  services: string | null;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export class KeyNameTakenError extends Error {
  constructor(name: string) {
    super(`a key named '${name}' already exists (revoke it first to reuse the name)`);
    this.name = 'KeyNameTakenError';
  }
}

/** How often a key's `last_used_at` is written at most: per-request writes would cost a commit each. */
export const LAST_USED_RESOLUTION_MS = 60_000;

export class KeyStore {
  readonly #db: Database;
  readonly #now: () => number;
  readonly #byDigest;
  readonly #lastUsedWritten = new Map<string, number>();

  /** `db` must already have the `api_keys` table (run store/migrations.ts `migrateApiKeys` or the store's migrations). */
  constructor(db: Database, opts: { now?: () => number } = {}) {
    this.#db = db;
    this.#now = opts.now ?? Date.now;
    this.#byDigest = db.prepare<[string], Row>('SELECT * FROM api_keys WHERE sha256 = ?');
  }

  /**
   * Insert a key (its digest). A revoked key with the same name is replaced; a live one is an
   * error (KeyNameTakenError).
   */
  add(key: { name: string; prefix: string; sha256: string; services?: string[] | null }): StoredKey {
    const now = this.#now();
    const insert = this.#db.transaction(() => {
      const existing = this.#db.prepare<[string], Row>('SELECT * FROM api_keys WHERE name = ?').get(key.name);
      if (existing && existing.revoked_at === null) throw new KeyNameTakenError(key.name);
      if (existing) this.#db.prepare('DELETE FROM api_keys WHERE name = ?').run(key.name);
      this.#db
        .prepare('INSERT INTO api_keys (name, prefix, sha256, services, created_at) VALUES (?, ?, ?, ?, ?)')
        .run(key.name, key.prefix, key.sha256.toLowerCase(), key.services ? JSON.stringify(key.services) : null, now);
    });
    insert.immediate();
    return {
      name: key.name,
      prefix: key.prefix,
      sha256: key.sha256.toLowerCase(),
      services: key.services ?? null,
      createdAt: now,
      lastUsedAt: null,
      revokedAt: null,
    };
  }

  /** Every key, live and revoked, oldest first. */
  list(): StoredKey[] {
    return this.#db.prepare<[], Row>('SELECT * FROM api_keys ORDER BY created_at, name').all().map(fromRow);
  }

  /** Revoke by name. Returns false when there is no live key of that name. */
  revoke(name: string): boolean {
    const r = this.#db
      .prepare('UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL')
      .run(this.#now(), name);
    return r.changes > 0;
  }

  /** The key (live or revoked) whose digest this is. See api-keys.ts for why lookup by digest is safe. */
  findByDigest(sha256: string): StoredKey | undefined {
    const row = this.#byDigest.get(sha256);
    return row ? fromRow(row) : undefined;
  }

  /** Note that a key was used; written at most once per LAST_USED_RESOLUTION_MS per key. */
  touch(sha256: string): void {
    const now = this.#now();
    const last = this.#lastUsedWritten.get(sha256);
    if (last !== undefined && now - last < LAST_USED_RESOLUTION_MS) return;
    // Bounded by the number of keys in the table (only found digests are touched).
    this.#lastUsedWritten.set(sha256, now);
    this.#db.prepare('UPDATE api_keys SET last_used_at = ? WHERE sha256 = ?').run(now, sha256);
  }
}

function fromRow(r: Row): StoredKey {
  return {
    name: r.name,
    prefix: r.prefix,
    sha256: r.sha256,
    services: parseServices(r.services),
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  };
}

function parseServices(json: string | null): string[] | null {
  if (json === null) return null;
  try {
    const v: unknown = JSON.parse(json);
    if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v;
  } catch {
    // fall through
  }
  // A corrupt scope must not widen a key to every service: allow none.
  return [];
}
