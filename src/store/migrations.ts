/**
 * The database schema, as one ordered list of migrations. `PRAGMA user_version` records how
 * many have run; opening the store runs the missing ones, each in its own transaction.
 * Append new migrations at the end (never edit or reorder a released one): version N is the
 * N-th entry.
 */
import type { Database } from 'better-sqlite3';
import { API_KEYS_MIGRATION } from '../auth/key-store.ts';

export interface Migration {
  /** Short description, shown in errors. */
  name: string;
  up(db: Database): void;
}

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
