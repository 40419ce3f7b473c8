/**
 * `hestia keys create NAME [--services a,b] | list [--json] | revoke NAME`, all with `[--db FILE]`.
 *
 * The database is the gateway's (`HESTIA_DB_PATH` / `server.db_path` from the config, or `--db`),
 * so a key created here works on the running gateway's next request, and a revoked one stops.
 *
 * Output contract for scripts: `keys create` prints the key alone on one stdout line and every
 * note on stderr, so `KEY=$(hestia keys create ci)` captures exactly the key.
 */
import { generateApiKey } from '../auth/api-keys.ts';
import { KeyNameTakenError, KeyStore } from '../auth/key-store.ts';
import type { Config } from '../config/schema.ts';
import { Store } from '../store/store.ts';
import { parseCommandArgs } from './args.ts';
import { type CliIo, dbPathIn, loadConfigIn, pathIn, withDefaults } from './io.ts';

const USAGE = `usage: hestia keys create NAME [--services ID,ID…] [--db FILE] [--config FILE]
       hestia keys list [--json] [--db FILE] [--config FILE]
       hestia keys revoke NAME [--db FILE] [--config FILE]
`;

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export async function keysCommand(argv: string[], io: CliIo = withDefaults()): Promise<number> {
  const parsed = parseCommandArgs(
    io,
    'hestia keys',
    USAGE,
    argv,
    {
      db: { type: 'string' },
      config: { type: 'string', short: 'c' },
      services: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    2,
  );
  if (!parsed.ok) return parsed.code;
  const { values, positionals } = parsed;
  const [sub, name, ...extra] = positionals;
  if (sub === undefined || extra.length > 0) {
    io.stderr.write(USAGE);
    return 2;
  }

  // The config gives the database path (and the config-defined keys for `list`). With --db the
  // config is optional: a broken config must not stop an operator from revoking a key.
  let config: Config | null = null;
  const loaded = loadConfigIn(io, values.config);
  if (loaded.ok) config = loaded.config;
  else if (values.db === undefined) {
    io.stderr.write(`${loaded.message}\n(or name the database with --db FILE)\n`);
    return 1;
  }
  const dbPath = values.db !== undefined ? pathIn(io, values.db) : dbPathIn(io, config!.server.db_path);

  // Through the store, so the file gets the same ordered migrations the gateway runs (and a
  // corrupt file is refused with a message naming it) whichever of the two opens it first.
  let opened: Store;
  try {
    opened = Store.open({
      path: dbPath,
      retentionMaxEvents: config?.events.retention_max_events ?? 10_000,
      retentionMaxAgeDays: config?.events.retention_max_age_days ?? 30,
    });
  } catch (err) {
    io.stderr.write(`hestia: ${(err as Error).message}\n`);
    return 1;
  }
  const db = opened.database;
  try {
    const store = new KeyStore(db);
    switch (sub) {
      case 'create':
        return create(io, store, name, values.services, config);
      case 'list':
        if (name !== undefined) break;
        return list(io, store, config, values.json);
      case 'revoke':
        return revoke(io, store, name, config);
    }
    io.stderr.write(`hestia keys: unknown subcommand '${sub}'\n${USAGE}`);
    return 2;
  } finally {
    opened.close();
  }
}

function create(
  io: CliIo,
  store: KeyStore,
  name: string | undefined,
  services: string | undefined,
  config: Config | null,
): number {
  if (name === undefined || !NAME_RE.test(name)) {
    io.stderr.write('hestia keys create: NAME must be 1-64 letters, digits, ".", "_" or "-"\n');
    return 2;
  }
  if (config?.auth.api_keys.some((k) => k.name === name)) {
    io.stderr.write(`hestia keys create: the config already defines a key named '${name}'\n`);
    return 1;
  }
  const scope = services === undefined ? null : services.split(',').map((s) => s.trim());
  if (scope && (scope.length === 0 || scope.some((s) => s === ''))) {
    io.stderr.write('hestia keys create: --services needs a comma-separated list of service ids\n');
    return 2;
  }
  const unknown = config && scope ? scope.filter((s) => !(s in config.services)) : [];
  const generated = generateApiKey();
  try {
    store.add({ name, prefix: generated.prefix, sha256: generated.sha256, services: scope });
  } catch (err) {
    if (err instanceof KeyNameTakenError) {
      io.stderr.write(`hestia keys create: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  // The key alone on stdout; everything else on stderr.
  io.stdout.write(`${generated.key}\n`);
  io.stderr.write(
    `created key '${name}' (${generated.prefix}…)${scope ? ` for services ${scope.join(', ')}` : ' for every service'}.\n` +
      'This is the only time the key is shown: store it now. Send it as X-API-Key or Authorization: Bearer.\n',
  );
  if (unknown.length > 0) io.stderr.write(`warning: not in the config (yet): ${unknown.join(', ')}\n`);
  if (config && !config.auth.enabled)
    io.stderr.write('note: auth is disabled; set auth.enabled: true (or HESTIA_AUTH_ENABLED=1) to require keys\n');
  return 0;
}

interface ListedKey {
  name: string;
  source: 'db' | 'config';
  prefix: string | null;
  services: string[] | null;
  created_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
}

function list(io: CliIo, store: KeyStore, config: Config | null, json: boolean): number {
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  const rows: ListedKey[] = store.list().map((k) => ({
    name: k.name,
    source: 'db',
    prefix: k.prefix,
    services: k.services,
    created_at: iso(k.createdAt),
    last_used_at: iso(k.lastUsedAt),
    revoked_at: iso(k.revokedAt),
  }));
  for (const k of config?.auth.api_keys ?? []) {
    rows.push({
      name: k.name,
      source: 'config',
      prefix: null,
      services: k.services ?? null,
      created_at: null,
      last_used_at: null,
      revoked_at: null,
    });
  }
  if (json) {
    io.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    io.stderr.write('no API keys (create one with `hestia keys create NAME`)\n');
    return 0;
  }
  const table = [
    ['NAME', 'PREFIX', 'CREATED', 'LAST USED', 'STATUS', 'SERVICES'],
    ...rows.map((r) => [
      r.name,
      r.prefix ? `${r.prefix}…` : '(config)',
      r.created_at ?? '-',
      r.last_used_at ?? (r.source === 'config' ? '-' : 'never'),
      r.revoked_at ? `revoked ${r.revoked_at}` : 'active',
      r.services ? r.services.join(',') : '*',
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  for (const row of table)
    io.stdout.write(
      `${row
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    );
  return 0;
}

function revoke(io: CliIo, store: KeyStore, name: string | undefined, config: Config | null): number {
  if (name === undefined) {
    io.stderr.write(USAGE);
    return 2;
  }
  if (store.revoke(name)) {
    io.stderr.write(`revoked key '${name}'; requests with it are refused from now on\n`);
    return 0;
  }
  const inConfig = config?.auth.api_keys.some((k) => k.name === name);
  io.stderr.write(
    inConfig
      ? `hestia keys revoke: '${name}' is defined in the config file (auth.api_keys): remove it there and reload\n`
      : `hestia keys revoke: no active key named '${name}'\n`,
  );
  return 1;
}
