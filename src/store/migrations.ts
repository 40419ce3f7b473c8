/**
 * The database schema, as one ordered list of migrations. `PRAGMA user_version` records how
 * many have run; opening the store runs the missing ones, each in its own transaction.
 * Append new migrations at the end (never edit or reorder a released one): version N is the
 * N-th entry. The tables' readers live with their concern (auth/key-store.ts reads `api_keys`).
 */
import type { Database } from 'better-sqlite3';

export interface Migration {
  /** Short description, shown in errors. */
  name: string;
  up(db: Database): void;
}

/**
 * The `api_keys` migration. Idempotent (`IF NOT EXISTS`) so it can run as one step of the store's
 * ordered migration list (PRAGMA user_version) and also on a database the CLI opened before the
 * store existed.
 */
export function migrateApiKeys(db: Database): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS api_keys (
      name          TEXT    NOT NULL UNIQUE,
      prefix        TEXT    NOT NULL,
      sha256        TEXT    NOT NULL UNIQUE,
      services      TEXT,               -- JSON array of service ids; NULL = every service
      created_at    INTEGER NOT NULL,   -- ms since the epoch
      last_used_at  INTEGER,
      revoked_at    INTEGER
    );
  `);
}

/** The `api_keys` step of the ordered migration list below. */
const API_KEYS_MIGRATION = { name: 'api keys (hestia keys create|list|revoke)', up: migrateApiKeys } as const;

export const MIGRATIONS: readonly Migration[] = [
  {
    name: 'service runtime state and lifecycle events',
    up(db) {
      db.exec(`
        CREATE TABLE service_state (
          service_id    TEXT PRIMARY KEY,
          state         TEXT NOT NULL,
          machine_id    TEXT,
          launcher_type TEXT,
          -- what the launcher needs to re-adopt after a restart (pid, job id, ...), JSON
          persist       TEXT,
          started_at    INTEGER,
          last_used_at  INTEGER,
          updated_at    INTEGER NOT NULL
        );
        CREATE TABLE events (
          id         INTEGER PRIMARY KEY AUTOINCREMENT,
          ts         INTEGER NOT NULL,
          service_id TEXT,
          machine_id TEXT,
          type       TEXT NOT NULL,
          details    TEXT NOT NULL
        );
        CREATE INDEX events_ts ON events (ts);
        CREATE INDEX events_service ON events (service_id, id);
        CREATE INDEX events_type ON events (type, id);
      `);
    },
  },
  // Idempotent (IF NOT EXISTS): `hestia keys` may have created the table before the gateway ran.
  API_KEYS_MIGRATION,
];
