/**
 * Config file I/O (the only impure part of config/): which file, read it, resolve it.
 *
 * HESTIA_CONFIG_PATH (or --config) names the file. Without one, `./hestia_config.yml` is used if
 * it exists; otherwise the built-in defaults (with the demo service) are served and a warning is
 * logged. An explicitly named file that is missing is an error (exit 1).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { BUILTIN_CONFIG_NAME, builtinServices } from './defaults.ts';
import { type ConfigIssue, formatIssue, resolveConfig } from './resolve.ts';
import type { Config } from './schema.ts';

export const DEFAULT_CONFIG_PATH = './hestia_config.yml';

export type LoadResult =
  | { ok: true; config: Config; path: string | null; warnings: string[]; notes: string[] }
  | { ok: false; message: string; issues: ConfigIssue[] };

export interface LoadOptions {
  /** Explicit path (--config / check-config FILE); wins over HESTIA_CONFIG_PATH. */
  path?: string | undefined;
  env: Readonly<Record<string, string | undefined>>;
}

export function loadConfig(opts: LoadOptions): LoadResult {
  const explicit = opts.path ?? opts.env.HESTIA_CONFIG_PATH;
  const path = explicit ?? DEFAULT_CONFIG_PATH;
  const warnings: string[] = [];
  let text = '';
  let file = path;
  let base: Record<string, unknown> | undefined;
  if (existsSync(path)) {
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const message = `${path}: cannot read config file: ${(err as Error).message}`;
      return { ok: false, message, issues: [{ file: path, path: '', message }] };
    }
  } else if (explicit !== undefined) {
    const message = `${path}: config file not found (from ${opts.path ? 'the command line' : 'HESTIA_CONFIG_PATH'})`;
    return { ok: false, message, issues: [{ file: path, path: '', message: 'config file not found' }] };
  } else {
    file = BUILTIN_CONFIG_NAME;
    base = builtinServices();
    warnings.push(
      `no config file at ${resolvePath(path)}; serving built-in defaults (the 'demo' and 'ollama' services). Set HESTIA_CONFIG_PATH or create hestia_config.yml`,
    );
  }
  const r = resolveConfig(text, opts.env, { file, ...(base ? { baseServices: base } : {}) });
  if (!r.ok) {
    const lines = r.issues.map((i) => `  - ${formatIssue(i)}`);
    return {
      ok: false,
      issues: r.issues,
      message: `invalid configuration (${r.issues.length} problem${r.issues.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
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
