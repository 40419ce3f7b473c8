import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type BetterSqlite3 from 'better-sqlite3';
import type { HestiaEvent } from '../../src/observability/events.ts';
import { MIGRATIONS } from '../../src/store/migrations.ts';
import { PRUNE_EVERY, Store, StoreError } from '../../src/store/store.ts';
import { startTestGateway } from '../helpers/gateway.ts';

const dir = mkdtempSync(join(tmpdir(), 'hestia-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function open(path: string, extra: Partial<Parameters<typeof Store.open>[0]> = {}) {
  return Store.open({ path, retentionMaxEvents: 10_000, retentionMaxAgeDays: 30, ...extra });
}

function ev(type: HestiaEvent['type'], serviceId: string | null, ts = Date.now()): HestiaEvent {
  return { ts, type, serviceId, machineId: 'local', details: { n: 1 } };
}

test('a new file is created (with its directory), in WAL mode, migrated to the latest version', () => {
  const file = join(dir, 'nested', 'deeper', 'hestia.db');
  const s = open(file);
  assert.equal(s.database.pragma('user_version', { simple: true }), MIGRATIONS.length);
  assert.equal(s.database.pragma('journal_mode', { simple: true }), 'wal');
  s.close();
  // Reopening runs nothing again and keeps the data.
  const s2 = open(file);
  assert.equal(s2.database.pragma('user_version', { simple: true }), MIGRATIONS.length);
  s2.close();
});

test('migrations appended later run once, in order, on an existing database', () => {
  const file = join(dir, 'migrate.db');
  open(file).close();
  const extra = [
    ...MIGRATIONS,
    {
      name: 'a later feature',
      up: (db: BetterSqlite3.Database) => db.exec('CREATE TABLE future_things (name TEXT PRIMARY KEY)'),
    },
  ];
  const s = open(file, { migrations: extra });
  assert.equal(s.database.pragma('user_version', { simple: true }), extra.length);
  s.database.prepare('INSERT INTO future_things VALUES (?)').run('k');
  s.close();
  const again = open(file, { migrations: extra });
  assert.equal((again.database.prepare('SELECT count(*) AS n FROM future_things').get() as { n: number }).n, 1);
  again.close();
  assert.throws(
    () => open(file),
    (err: unknown) =>
      err instanceof StoreError && /newer than this Hestia knows/.test(err.message) && err.message.includes(file),
  );
});

test('events are returned newest first, filtered by service and type', () => {
  const s = open(':memory:');
  s.appendEvent(ev('service_start', 'a', 1));
  s.appendEvent(ev('service_ready', 'a', 2));
  s.appendEvent(ev('service_start', 'b', 3));
  assert.deepEqual(
    s.queryEvents({ limit: 10 }).map((e) => [e.type, e.serviceId]),
    [
      ['service_start', 'b'],
      ['service_ready', 'a'],
      ['service_start', 'a'],
    ],
  );
  assert.deepEqual(
    s.queryEvents({ serviceId: 'a', limit: 10 }).map((e) => e.type),
    ['service_ready', 'service_start'],
  );
  assert.equal(s.queryEvents({ type: 'service_start', limit: 1 })[0]?.serviceId, 'b');
  assert.deepEqual(s.queryEvents({ limit: 1 })[0]?.details, { n: 1 });
  s.close();
});

test('retention keeps at most retention_max_events, pruning in bounded batches', () => {
  const s = open(':memory:', { retentionMaxEvents: 10 });
  const base = Date.now();
  for (let i = 0; i < 3 * PRUNE_EVERY + 5; i++) s.appendEvent(ev('service_start', 'a', base + i));
  const n = s.queryEvents({ limit: 1000 }).length;
  assert.ok(n <= 10 + PRUNE_EVERY, `at most one batch over the limit, got ${n}`);
  s.prune();
  const kept = s.queryEvents({ limit: 1000 });
  assert.equal(kept.length, 10);
  assert.equal(kept[0]?.ts, base + 3 * PRUNE_EVERY + 4, 'the newest are kept');
  s.close();
});

test('retention drops events older than retention_max_age_days', () => {
  const now = 100 * 86_400_000;
  const s = open(':memory:', { retentionMaxAgeDays: 2, now: () => now });
  s.appendEvent(ev('service_start', 'a', now - 3 * 86_400_000));
  s.appendEvent(ev('service_start', 'a', now - 1 * 86_400_000));
  s.prune();
  assert.equal(s.queryEvents({ limit: 10 }).length, 1);
  s.close();
});

test('batch: the writes of its function commit together; an exception in it rolls them back and propagates', () => {
  const errors: Error[] = [];
  const s = open(':memory:', { onError: (e) => errors.push(e) });
  const row = (serviceId: string) => ({
    serviceId,
    state: 'cold' as const,
    machineId: 'local',
    launcherType: 'process',
    persist: null,
    startedAt: null,
    lastUsedAt: null,
  });
  const seen = s.batch(() => {
    s.saveServiceState(row('a'));
    s.saveServiceState(row('b'));
    // Inside one transaction: nothing committed yet.
    assert.equal(s.database.inTransaction, true);
    return 'result';
  });
  assert.equal(seen, 'result');
  assert.equal(s.database.inTransaction, false);
  assert.deepEqual([...s.loadServiceStates().keys()].sort(), ['a', 'b']);

  assert.throws(
    () =>
      s.batch(() => {
        s.saveServiceState(row('c'));
        throw new Error('a bug in the batch');
      }),
    /a bug in the batch/,
  );
  assert.equal(s.loadServiceStates().has('c'), false, 'rolled back');
  assert.deepEqual(errors, [], "the function's own exception is not a store error");
  s.close();
});

test('service state rows round-trip, including the launcher persist JSON', () => {
  const s = open(':memory:');
  s.saveServiceState({
    serviceId: 'a',
    state: 'hot',
    machineId: 'local',
    launcherType: 'process',
    persist: { pid: 42, argv: ['x'] },
    startedAt: 1,
    lastUsedAt: 2,
  });
  s.touchServiceState('a', 5);
  const row = s.loadServiceStates().get('a');
  assert.deepEqual(
    { ...row, updatedAt: 0 },
    {
      serviceId: 'a',
      state: 'hot',
      machineId: 'local',
      launcherType: 'process',
      persist: { pid: 42, argv: ['x'] },
      startedAt: 1,
      lastUsedAt: 5,
      updatedAt: 0,
    },
  );
  s.close();
});

test('a corrupt database file is a clear error naming the file, and is left untouched', () => {
  const file = join(dir, 'corrupt.db');
  const junk = 'this is not a database '.repeat(500);
  writeFileSync(file, junk);
  assert.throws(
    () => open(file),
    (err: unknown) => err instanceof StoreError && err.message.includes(file) && /not a database/.test(err.message),
  );
  assert.equal(readFileSync(file, 'utf8'), junk, 'never reset');
});

test('an unusable location is a clear error naming the file', () => {
  const notADir = join(dir, 'plain-file');
  writeFileSync(notADir, 'x');
  const file = join(notADir, 'hestia.db');
  assert.throws(
    () => open(file),
    (err: unknown) => err instanceof StoreError && err.message.includes(file),
  );
});

test('startGateway refuses to start on a corrupt database', async () => {
  const file = join(dir, 'corrupt-gw.db');
  writeFileSync(file, 'garbage'.repeat(1000));
  await assert.rejects(startTestGateway({ services: {} }, { dbPath: file }), StoreError);
});

test('`hestia serve` exits 1 with a message naming a corrupt database file', async () => {
  const file = join(dir, 'corrupt-cli.db');
  writeFileSync(file, 'garbage'.repeat(1000));
  const bin = fileURLToPath(new URL('../../bin/hestia.mjs', import.meta.url));
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.HESTIA_CONFIG_PATH;
  const child = spawn(process.execPath, [bin, 'serve'], {
    env: {
      ...env,
      HESTIA_DB_PATH: file,
      HESTIA_PORT: '0',
      HESTIA_LOG_LEVEL: 'error',
    },
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 1, stderr);
  assert.ok(stderr.includes(file), stderr);
  assert.match(stderr, /not a database/);
});

test('file modes: the directory Hestia creates is 0700, the database and its -wal/-shm files 0600', () => {
  const previous = process.umask(0o022); // the usual umask, under which defaults would be 0755/0644
  try {
    const parent = join(dir, 'modes');
    const file = join(parent, 'data', 'hestia.db');
    const s = open(file);
    s.appendEvent(ev('service_start', 'a'));
    const mode = (p: string) => statSync(p).mode & 0o777;
    assert.equal(mode(join(parent, 'data')).toString(8), '700');
    assert.equal(mode(parent).toString(8), '700', 'every directory created for it');
    for (const f of [file, `${file}-wal`, `${file}-shm`]) {
      assert.ok(existsSync(f), `${f} exists while open`);
      assert.equal(mode(f).toString(8), '600', f);
    }
    s.close();
  } finally {
    process.umask(previous);
  }
});

test('file modes: an existing world-readable database (and its WAL files) is tightened to 0600 at open', () => {
  const file = join(dir, 'loose.db');
  open(file).close();
  chmodSync(file, 0o644);
  const s = open(file);
  s.appendEvent(ev('service_start', 'a'));
  for (const f of [file, `${file}-wal`, `${file}-shm`]) assert.equal((statSync(f).mode & 0o777).toString(8), '600', f);
  s.close();
});
