import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import { verifyPassword } from '../../src/auth/password.ts';
import { runCli } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'hestia-keys-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const cleanEnv = { HESTIA_CONFIG_PATH: undefined, HESTIA_DB_PATH: undefined, HESTIA_AUTH_ENABLED: undefined };

describe('hestia keys (in-process, real SQLite file)', () => {
  const config = join(dir, 'hestia_config.yml');
  const dbPath = join(dir, 'data', 'hestia.db');
  writeFileSync(
    config,
    `server:\n  db_path: ${dbPath}\nservices:\n  a:\n    base_url: http://127.0.0.1:1\nauth:\n  enabled: true\n  api_keys:\n    - name: from-config\n      sha256: ${hashApiKey('hst_cfg')}\n`,
  );
  const env = { ...cleanEnv, HESTIA_CONFIG_PATH: config };
  let key = '';

  test('create prints the key alone on stdout, notes on stderr, and stores only its digest', async () => {
    const r = await runCli(['keys', 'create', 'laptop'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^hst_[A-Za-z0-9_-]{43}\n$/);
    key = r.stdout.trim();
    assert.match(r.stderr, /only time the key is shown/);
    assert.ok(!r.stderr.includes(key));
    const db = new BetterSqlite3(dbPath, { readonly: true });
    const rows = db.prepare('SELECT name, prefix, sha256 FROM api_keys').all();
    db.close();
    assert.deepEqual(rows, [{ name: 'laptop', prefix: key.slice(0, 12), sha256: hashApiKey(key) }]);
  });

  test('create with --services, and name clashes are refused', async () => {
    const r = await runCli(['keys', 'create', 'ci', '--services', 'a,zzz'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /not in the config \(yet\): zzz/);
    const dup = await runCli(['keys', 'create', 'laptop'], { env });
    assert.equal(dup.code, 1);
    assert.equal(dup.stdout, '');
    assert.match(dup.stderr, /already exists/);
    const cfg = await runCli(['keys', 'create', 'from-config'], { env });
    assert.equal(cfg.code, 1);
    assert.match(cfg.stderr, /config already defines/);
    const bad = await runCli(['keys', 'create', 'bad name'], { env });
    assert.equal(bad.code, 2);
  });

  test('list shows names, prefixes, created and last-used times, scopes, and config keys', async () => {
    const r = await runCli(['keys', 'list'], { env });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^NAME\s+PREFIX\s+CREATED\s+LAST USED\s+STATUS\s+SERVICES$/);
    assert.match(
      r.stdout,
      new RegExp(`laptop\\s+${key.slice(0, 12)}…\\s+\\d{4}-\\d\\d-\\d\\dT\\S+\\s+never\\s+active\\s+\\*`),
    );
    assert.match(r.stdout, /ci\s+hst_\S+\s+\S+\s+never\s+active\s+a,zzz/);
    assert.match(r.stdout, /from-config\s+\(config\)/);
    assert.ok(!r.stdout.includes(key), 'never the key itself');
    const j = await runCli(['keys', 'list', '--json'], { env });
    const parsed = JSON.parse(j.stdout) as Array<{ name: string; source: string }>;
    assert.deepEqual(
      parsed.map((k) => [k.name, k.source]),
      [
        ['laptop', 'db'],
        ['ci', 'db'],
        ['from-config', 'config'],
      ],
    );
  });

  test('revoke marks the key revoked; revoking again or an unknown name fails', async () => {
    const r = await runCli(['keys', 'revoke', 'laptop'], { env });
    assert.equal(r.code, 0, r.stderr);
    const again = await runCli(['keys', 'revoke', 'laptop'], { env });
    assert.equal(again.code, 1);
    const cfg = await runCli(['keys', 'revoke', 'from-config'], { env });
    assert.equal(cfg.code, 1);
    assert.match(cfg.stderr, /defined in the config file/);
    const list = await runCli(['keys', 'list'], { env });
    assert.match(list.stdout, /laptop\s+\S+\s+\S+\s+never\s+revoked \d{4}-/);
  });

  test('--db works without any config file', async () => {
    const other = join(dir, 'other.db');
    const r = await runCli(['keys', 'create', 'x', '--db', other], {
      env: { ...cleanEnv, HESTIA_CONFIG_PATH: join(dir, 'missing.yml') },
    });
    assert.equal(r.code, 0, r.stderr);
    const l = await runCli(['keys', 'list', '--json', '--db', other], {
      env: { ...cleanEnv, HESTIA_CONFIG_PATH: join(dir, 'missing.yml') },
    });
    assert.deepEqual(
      (JSON.parse(l.stdout) as Array<{ name: string }>).map((k) => k.name),
      ['x'],
    );
  });
});

/** Run the command in-process with `input` on stdin (a pipe, not a terminal). */
const runWithStdin = (args: string[], input: string) => runCli(args, { stdin: input });

describe('hestia hash-password', () => {
  test('reads stdin (one trailing newline dropped) and prints a verifiable scrypt hash alone on stdout', async () => {
    const r = await runWithStdin(['hash-password'], 'pa ss\u00e9word\n');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+\n$/);
    assert.equal(await verifyPassword('pa ss\u00e9word', r.stdout.trim()), true);
    assert.equal(await verifyPassword('pa ss\u00e9word\n', r.stdout.trim()), false);
    assert.ok(!r.stderr.includes('pa ss'));
  });

  test('an empty password and a password in argv are refused', async () => {
    assert.equal((await runWithStdin(['hash-password'], '\n')).code, 1);
    const argv = await runWithStdin(['hash-password', 'hunter2'], '');
    assert.equal(argv.code, 2);
    assert.equal(argv.stdout, '');
  });
});
