/**
 * Config file I/O (the only impure part of config/): which file, read it, resolve it.
 *
 * HESTIA_CONFIG_PATH (or --config) names the file. Without one, `./hestia_config.yml` is used if
 * it exists, else `$XDG_CONFIG_HOME/hestia/hestia_config.yml` if that exists (default-paths.ts);
 * otherwise the built-in defaults (with the demo service) are served and a warning is logged. An
 * explicitly named file that is missing is an error (exit 1).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { userConfigPath } from './default-paths.ts';
import { BUILTIN_CONFIG_NAME, builtinServices } from './defaults.ts';
import { type ConfigIssue, formatIssue, resolveConfig } from './resolve.ts';
import type { Config } from './schema.ts';

export const DEFAULT_CONFIG_PATH = './hestia_config.yml';

export type LoadResult =
  | { ok: true; config: Config; path: string | null; warnings: string[]; notes: string[] }
  | { ok: false; message: string; issues: ConfigIssue[]; warnings: string[] };

export interface LoadOptions {
  /** Explicit path (--config / check-config FILE); wins over HESTIA_CONFIG_PATH. */
  path?: string | undefined;
  env: Readonly<Record<string, string | undefined>>;
  /** Where `./hestia_config.yml` is looked for (default: the process's working directory). */
  cwd?: string;
}

export function loadConfig(opts: LoadOptions): LoadResult {
  const explicit = opts.path ?? opts.env.HESTIA_CONFIG_PATH;
  const local = opts.cwd === undefined ? DEFAULT_CONFIG_PATH : resolvePath(opts.cwd, DEFAULT_CONFIG_PATH);
  let path = explicit ?? local;
  if (explicit === undefined && !existsSync(path)) {
    const user = userConfigPath(opts.env);
    if (user !== null && existsSync(user)) path = user;
  }
  const warnings: string[] = [];
  let text = '';
  let file = path;
  let base: Record<string, unknown> | undefined;
  if (existsSync(path)) {
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const message = `${path}: cannot read config file: ${(err as Error).message}`;
      return { ok: false, message, issues: [{ file: path, path: '', message }], warnings };
    }
  } else if (explicit !== undefined) {
    const message = `${path}: config file not found (from ${opts.path ? 'the command line' : 'HESTIA_CONFIG_PATH'})`;
    return { ok: false, message, issues: [{ file: path, path: '', message: 'config file not found' }], warnings };
  } else {
    file = BUILTIN_CONFIG_NAME;
    base = builtinServices();
    warnings.push(
      `no config file at ${resolvePath(path)}${userAlso(opts.env)}; serving built-in defaults (the 'demo' and 'ollama' services). Set HESTIA_CONFIG_PATH or create hestia_config.yml`,
    );
  }
  const r = resolveConfig(text, opts.env, { file, ...(base ? { baseServices: base } : {}) });
  if (!r.ok) {
    // Every problem at once, and the warnings with them: an unknown key is often the cause of
    // an error (`base_ur` → "base_url is required").
    const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
    const lines = [...r.issues.map((i) => `  - ${formatIssue(i)}`), ...r.warnings.map((w) => `  - warning: ${w}`)];
    const counts = [
      plural(r.issues.length, 'problem'),
      ...(r.warnings.length ? [plural(r.warnings.length, 'warning')] : []),
    ];
    return {
      ok: false,
      issues: r.issues,
      warnings: [...warnings, ...r.warnings],
      message: `invalid configuration (${counts.join(', ')}):\n${lines.join('\n')}`,
    };
  }
  return {
    ok: true,
    config: r.config,
    path: base ? null : path,
    warnings: [...warnings, ...r.warnings],
    notes: r.notes,
  };
}

/** The warning's second place looked at, when there is one. */
function userAlso(env: Readonly<Record<string, string | undefined>>): string {
  const user = userConfigPath(env);
  return user === null ? '' : ` or ${user}`;
}
