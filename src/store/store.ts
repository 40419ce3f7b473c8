/**
 * The SQLite store (better-sqlite3, WAL): per-service runtime state, so a restarted gateway can
 * re-adopt what is still running (SPEC §5), and the lifecycle event log behind /v1/events.
 *
 * - Opening creates the file's directory, runs pending migrations (migrations.ts) and fails
 *   with a StoreError naming the file when it is unreadable, unwritable or not a database:
 *   the gateway then exits 1. It never recreates or resets a database on its own.
 * - Event retention: at most `retention_max_events` rows and none older than
 *   `retention_max_age_days` (0 = no age limit). Pruning runs at open and after every
 *   PRUNE_EVERY inserts, so its cost is bounded and amortised.
 * - A write that fails at run time (disk full) is reported to `onError` and dropped: the event
 *   log is an observer and must never take the gateway down.
 * - File modes: the directory Hestia creates for the database is 0700, the database file 0600
 *   (created so before SQLite opens it; an existing one is tightened). SQLite gives the `-wal`
 *   and `-shm` files the database file's mode; those present at open are tightened too.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3';
import type { ServiceState } from '../lifecycle-states.ts';
import type { HestiaEvent, StoredEvent } from '../observability/events.ts';
import { MIGRATIONS, type Migration } from './migrations.ts';

/** Modes of what Hestia creates for its database: only the gateway's user may read it. */
export const DB_FILE_MODE = 0o600;
export const DIR_MODE = 0o700;

/** Create `file` with DB_FILE_MODE (when `create`), or tighten an existing one to it. */
function restrictFile(file: string, create: boolean): void {
  if (!existsSync(file)) {
    if (create) closeSync(openSync(file, 'a', DB_FILE_MODE));
    return;
  }
  try {
    chmodSync(file, DB_FILE_MODE);
  } catch {
    // Not ours to change (another owner, a read-only mount): SQLite reports what matters.
  }
}

/** Inserts between two retention passes. */
export const PRUNE_EVERY = 100;
const DAY_MS = 86_400_000;

export class StoreError extends Error {
  constructor(
    readonly file: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`database ${file}: ${message}`, options);
    this.name = 'StoreError';
  }
}

export interface StoreOptions {
  /** File path, or `:memory:`. */
  path: string;
  retentionMaxEvents: number;
  retentionMaxAgeDays: number;
  migrations?: readonly Migration[];
  onError?: (err: Error) => void;
  now?: () => number;
}

export interface ServiceStateRow {
  serviceId: string;
  state: ServiceState;
  machineId: string | null;
  launcherType: string | null;
  persist: Record<string, unknown> | null;
  startedAt: number | null;
  lastUsedAt: number | null;
  updatedAt: number;
}

export interface EventQuery {
  serviceId?: string | undefined;
  type?: string | undefined;
  limit: number;
}

interface EventRow {
  id: number;
  ts: number;
  service_id: string | null;
  machine_id: string | null;
  type: string;
  details: string;
}

interface StateRow {
  service_id: string;
  state: string;
  machine_id: string | null;
  launcher_type: string | null;
  persist: string | null;
  started_at: number | null;
  last_used_at: number | null;
  updated_at: number;
}

function parseJson(text: string | null): Record<string, unknown> | null {
  if (text === null) return null;
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Run every migration after `user_version`, each atomically. Exported for tests. */
export function migrate(db: Database, file: string, migrations: readonly Migration[] = MIGRATIONS): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > migrations.length) {
    throw new StoreError(
      file,
      `schema version ${current} is newer than this Hestia knows (${migrations.length}); use a newer Hestia or another db_path`,
    );
  }
  for (let v = current; v < migrations.length; v++) {
    const m = migrations[v]!;
    db.transaction(() => {
      m.up(db);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}

export class Store {
  readonly file: string;
  private readonly db: Database;
  private readonly now: () => number;
  private insertsSincePrune = 0;
  private closed = false;
  private readonly stmts: {
    insertEvent: Statement;
    upsertState: Statement;
    touchState: Statement;
    allStates: Statement;
    pruneAge: Statement;
    pruneCount: Statement;
  };

  private constructor(
    db: Database,
    file: string,
    private readonly opts: StoreOptions,
  ) {
    this.db = db;
    this.file = file;
    this.now = opts.now ?? Date.now;
    this.stmts = {
      insertEvent: db.prepare(
        'INSERT INTO events (ts, service_id, machine_id, type, details) VALUES (@ts, @serviceId, @machineId, @type, @details)',
      ),
      upsertState: db.prepare(`
        INSERT INTO service_state (service_id, state, machine_id, launcher_type, persist, started_at, last_used_at, updated_at)
        VALUES (@serviceId, @state, @machineId, @launcherType, @persist, @startedAt, @lastUsedAt, @updatedAt)
        ON CONFLICT (service_id) DO UPDATE SET state = excluded.state, machine_id = excluded.machine_id,
          launcher_type = excluded.launcher_type, persist = excluded.persist, started_at = excluded.started_at,
          last_used_at = excluded.last_used_at, updated_at = excluded.updated_at`),
      touchState: db.prepare('UPDATE service_state SET last_used_at = ?, updated_at = ? WHERE service_id = ?'),
      allStates: db.prepare('SELECT * FROM service_state'),
      pruneAge: db.prepare('DELETE FROM events WHERE ts < ?'),
      pruneCount: db.prepare(
        'DELETE FROM events WHERE id <= (SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)',
      ),
    };
  }

  /** Open (creating if needed) and migrate. Throws StoreError naming the file on any failure. */
  static open(opts: StoreOptions): Store {
    const memory = opts.path === ':memory:';
    const file = memory ? ':memory:' : resolve(opts.path);
    let db: Database | undefined;
    try {
      if (!memory) {
        try {
          // Only directories created here get 0700 (the umask can only narrow it further).
          mkdirSync(dirname(file), { recursive: true, mode: DIR_MODE });
        } catch (err) {
          throw new StoreError(file, `cannot create its directory: ${(err as Error).message}`, { cause: err });
        }
      }
      try {
        if (!memory) restrictFile(file, true);
        db = new BetterSqlite3(file);
        db.pragma('busy_timeout = 5000');
        if (!memory) {
          db.pragma('journal_mode = WAL');
          for (const suffix of ['-wal', '-shm']) restrictFile(file + suffix, false);
        }
        db.pragma('synchronous = NORMAL');
        // Reading the schema forces SQLite to parse the header: a corrupt file fails here.
        db.prepare('SELECT count(*) FROM sqlite_master').get();
        const check = db.pragma('quick_check', { simple: true });
        if (check !== 'ok') throw new Error(`integrity check failed: ${String(check)}`);
        migrate(db, file, opts.migrations);
      } catch (err) {
        if (err instanceof StoreError) throw err;
        throw new StoreError(file, `cannot open: ${(err as Error).message}`, { cause: err });
      }
      const store = new Store(db, file, opts);
      store.prune();
      return store;
    } catch (err) {
      try {
        db?.close();
      } catch {
        // already failing; the first error is the one that matters
      }
      throw err;
    }
  }

  // ---- events --------------------------------------------------------------------------

  /** Store one event; returns its row id (the SSE stream's `id`), or null when not written. */
  appendEvent(ev: HestiaEvent): number | null {
    if (this.closed) return null;
    let id: number | null = null;
    this.guard(() => {
      const info = this.stmts.insertEvent.run({
        ts: ev.ts,
        serviceId: ev.serviceId,
        machineId: ev.machineId ?? null,
        type: ev.type,
        details: JSON.stringify(ev.details ?? {}),
      });
      id = Number(info.lastInsertRowid);
      if (++this.insertsSincePrune >= PRUNE_EVERY) this.prune();
    });
    return id;
  }

  /** Newest first. */
  queryEvents(q: EventQuery): StoredEvent[] {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: q.limit };
    if (q.serviceId !== undefined) {
      where.push('service_id = @serviceId');
      params.serviceId = q.serviceId;
    }
    if (q.type !== undefined) {
      where.push('type = @type');
      params.type = q.type;
    }
    const sql = `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
    const rows = this.db.prepare(sql).all(params) as EventRow[];
    return rows.map((r) => ({
      id: r.id,
      ts: r.ts,
      serviceId: r.service_id,
      machineId: r.machine_id,
      type: r.type,
      details: parseJson(r.details) ?? {},
    }));
  }

  /** Apply retention now (also runs by itself every PRUNE_EVERY inserts). */
  prune(): void {
    this.insertsSincePrune = 0;
    this.guard(() => {
      if (this.opts.retentionMaxAgeDays > 0)
        this.stmts.pruneAge.run(this.now() - this.opts.retentionMaxAgeDays * DAY_MS);
      this.stmts.pruneCount.run(this.opts.retentionMaxEvents);
    });
  }

  // ---- service state -------------------------------------------------------------------

  saveServiceState(row: Omit<ServiceStateRow, 'updatedAt'>): void {
    if (this.closed) return;
    this.guard(() =>
      this.stmts.upsertState.run({
        serviceId: row.serviceId,
        state: row.state,
        machineId: row.machineId,
        launcherType: row.launcherType,
        persist: row.persist ? JSON.stringify(row.persist) : null,
        startedAt: row.startedAt,
        lastUsedAt: row.lastUsedAt,
        updatedAt: this.now(),
      }),
    );
  }

  /**
   * Run `fn` with every write it makes in one transaction: one commit instead of one per row
   * (the boot's state rows of 2,000 services took 0.14 s one by one). A failed commit is
   * reported like any write error; `fn`'s own exceptions propagate.
   */
  batch<T>(fn: () => T): T {
    if (this.closed) return fn();
    let result!: T;
    let failed: { error: unknown } | null = null;
    try {
      this.db.transaction(() => {
        try {
          result = fn();
        } catch (error) {
          failed = { error };
          throw error;
        }
      })();
    } catch (err) {
      if (failed !== null) throw (failed as { error: unknown }).error;
      // The commit failed: reported like any failed write (the rows are lost, the gateway goes on).
      this.report(err);
    }
    return result;
  }

  touchServiceState(serviceId: string, lastUsedAt: number): void {
    if (this.closed) return;
    this.guard(() => this.stmts.touchState.run(lastUsedAt, this.now(), serviceId));
  }

  loadServiceStates(): Map<string, ServiceStateRow> {
    const out = new Map<string, ServiceStateRow>();
    for (const r of this.stmts.allStates.all() as StateRow[]) {
      out.set(r.service_id, {
        serviceId: r.service_id,
        state: r.state as ServiceState,
        machineId: r.machine_id,
        launcherType: r.launcher_type,
        persist: parseJson(r.persist),
        startedAt: r.started_at,
        lastUsedAt: r.last_used_at,
        updatedAt: r.updated_at,
      });
    }
    return out;
  }

  /** The underlying handle, for colleagues' repositories (API keys) that share the file. */
  get database(): Database {
    return this.db;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.db.close();
    } catch (err) {
      this.opts.onError?.(err as Error);
    }
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.report(err);
    }
  }

  private report(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.opts.onError?.(new StoreError(this.file, e.message, { cause: e }));
  }
}
