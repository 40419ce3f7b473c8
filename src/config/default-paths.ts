/**
 * Where Hestia looks for its config and keeps its database when nothing says otherwise.
 *
 * - Config: `./hestia_config.yml` when present, else `$XDG_CONFIG_HOME/hestia/hestia_config.yml`
 *   (`~/.config/hestia/…`) when present, else the built-in defaults.
 * - Database: `./data/hestia.db` for a checkout (`npm start`), and
 *   `$XDG_STATE_HOME/hestia/hestia.db` (`~/.local/state/hestia/…`) for an installed command, so a
 *   service manager that starts `hestia` in another directory still finds the same database.
 * `HESTIA_CONFIG_PATH`/`--config` and `HESTIA_DB_PATH`/`server.db_path` always win.
 */
import { join } from 'node:path';

type Env = Readonly<Record<string, string | undefined>>;

/** `server.db_path`'s default in the schema: the checkout's database. */
export const CHECKOUT_DB_PATH = './data/hestia.db';

function xdgDir(env: Env, variable: 'XDG_CONFIG_HOME' | 'XDG_STATE_HOME', fallback: string): string | null {
  const set = env[variable];
  // The XDG spec: a relative value is invalid and is ignored.
  if (set?.startsWith('/')) return set;
  return env.HOME ? join(env.HOME, fallback) : null;
}

/** `$XDG_CONFIG_HOME/hestia/hestia_config.yml`, or null without a home directory. */
export function userConfigPath(env: Env): string | null {
  const dir = xdgDir(env, 'XDG_CONFIG_HOME', '.config');
  return dir === null ? null : join(dir, 'hestia', 'hestia_config.yml');
}

/**
 * The database path to use when the config leaves `server.db_path` at its default: the checkout's
 * `./data/hestia.db`, or for an installed command `$XDG_STATE_HOME/hestia/hestia.db`.
 */
export function defaultDbPath(env: Env, installed: boolean): string {
  if (!installed) return CHECKOUT_DB_PATH;
  const dir = xdgDir(env, 'XDG_STATE_HOME', join('.local', 'state'));
  return dir === null ? CHECKOUT_DB_PATH : join(dir, 'hestia', 'hestia.db');
}
