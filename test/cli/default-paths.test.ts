/** Where the config and the database are when nothing says (README → "Files"). */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { defaultDbPath, userConfigPath } from '../../src/config/default-paths.ts';
import { runCli, startCliGateway } from '../helpers/cli.ts';

const home = mkdtempSync(join(tmpdir(), 'hestia-paths-'));
after(() => rmSync(home, { recursive: true, force: true }));

/** An environment with no Hestia or XDG settings of the test machine's, and `home` as HOME. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string | undefined> {
  return {
    HOME: home,
    XDG_CONFIG_HOME: undefined,
    XDG_STATE_HOME: undefined,
    HESTIA_CONFIG_PATH: undefined,
    HESTIA_DB_PATH: undefined,
    ...extra,
  };
}

function service(id: string): string {
  return `services:\n  ${id}:\n    base_url: http://127.0.0.1:9\n`;
}

test('XDG paths: the user config and the installed database follow XDG_*_HOME, else HOME; relative values are ignored', () => {
  assert.equal(userConfigPath({ HOME: '/h' }), '/h/.config/hestia/hestia_config.yml');
  assert.equal(userConfigPath({ HOME: '/h', XDG_CONFIG_HOME: '/x' }), '/x/hestia/hestia_config.yml');
  assert.equal(userConfigPath({ HOME: '/h', XDG_CONFIG_HOME: 'rel' }), '/h/.config/hestia/hestia_config.yml');
  assert.equal(defaultDbPath({ HOME: '/h' }, true), '/h/.local/state/hestia/hestia.db');
  assert.equal(defaultDbPath({ HOME: '/h', XDG_STATE_HOME: '/s' }, true), '/s/hestia/hestia.db');
  assert.equal(defaultDbPath({ HOME: '/h' }, false), './data/hestia.db');
});

test('without ./hestia_config.yml the user config under XDG_CONFIG_HOME is used; a local file wins', async () => {
  const cwd = mkdtempSync(join(home, 'cwd-'));
  mkdirSync(join(home, '.config', 'hestia'), { recursive: true });
  writeFileSync(join(home, '.config', 'hestia', 'hestia_config.yml'), service('from_user_config'));
  const user = await runCli(['check-config'], { env: cleanEnv(), cwd });
  assert.equal(user.code, 0, user.stderr);
  assert.match(user.stdout, /from_user_config/);

  writeFileSync(join(cwd, 'hestia_config.yml'), service('from_local_file'));
  const local = await runCli(['check-config'], { env: cleanEnv(), cwd });
  assert.equal(local.code, 0, local.stderr);
  assert.match(local.stdout, /from_local_file/);
  assert.doesNotMatch(local.stdout, /from_user_config/);
});

test('an installed command keeps its database under XDG_STATE_HOME (0600), and serve says where both are', async () => {
  const cwd = mkdtempSync(join(home, 'svc-'));
  const state = join(home, 'state');
  const gw = await startCliGateway(['serve'], cleanEnv({ XDG_STATE_HOME: state }), { cwd, installed: true });
  try {
    const paths = gw.lines.find((l) => l.event_type === 'paths');
    assert.ok(paths, 'a paths line');
    const db = join(state, 'hestia', 'hestia.db');
    assert.equal(paths.database, db);
    assert.equal(statSync(db).mode & 0o777, 0o600);
    assert.match(String(paths.msg), new RegExp(`database: ${db}`));
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});

test('a checkout keeps ./data/hestia.db beside where it runs', async () => {
  const cwd = mkdtempSync(join(home, 'checkout-'));
  const gw = await startCliGateway(['serve'], cleanEnv({ XDG_STATE_HOME: join(home, 'unused') }), { cwd });
  try {
    const paths = gw.lines.find((l) => l.event_type === 'paths');
    assert.equal(paths?.database, join(cwd, 'data', 'hestia.db'));
    assert.ok(statSync(join(cwd, 'data', 'hestia.db')).isFile());
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});
