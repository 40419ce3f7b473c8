/**
 * Strategy plugins: discover `.js`/`.mjs` files in the strategies directory, import each, call
 * its one exported function (`register`, or the default export) and register what it returns.
 *
 * Never fatal. A plugin that fails to import (syntax error, throws at top level), exports no
 * function, throws in `register`, returns something that is not a strategy, or takes longer
 * than `timeoutMs` to import or register (a top-level await that never settles) is logged
 * (`strategy_plugin_skipped`, warn, naming the file and the problem) and skipped; the gateway
 * starts anyway. A plugin returning several strategies keeps the valid ones.
 *
 * Files load in name order, so which of two same-named strategies wins is deterministic
 * (the first; see StrategyRegistry). Subdirectories, dotfiles and other extensions are ignored.
 */
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from '../observability/logger.ts';
import { describe, type StrategyRegistry } from './strategy-registry.ts';
import type { StrategyPluginApi } from './types.ts';

export const DEFAULT_PLUGIN_TIMEOUT_MS = 5_000;

export interface PluginLoadOptions {
  log: Logger;
  /** Longest wait for one plugin's import, and then for its `register`. */
  timeoutMs?: number;
  /** True when the directory was configured explicitly: then a missing directory is a warning. */
  explicit?: boolean;
}

export interface PluginLoadResult {
  /** Absolute path of the plugin file. */
  file: string;
  /** Names registered from this file. */
  registered: string[];
  /** Why (part of) the plugin was skipped. */
  problems: string[];
}

const PLUGIN_FILE = /^[^.].*\.m?js$/;

export async function loadStrategyPlugins(
  dir: string,
  registry: StrategyRegistry,
  opts: PluginLoadOptions,
): Promise<PluginLoadResult[]> {
  const { log } = opts;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS;
  const absDir = resolve(dir);
  let names: string[];
  try {
    names = (await readdir(absDir)).filter((n) => PLUGIN_FILE.test(n)).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !opts.explicit) {
      log.debug({ event_type: 'strategy_plugins', dir: absDir }, 'no strategies directory; built-in strategies only');
    } else {
      log.warn(
        { event_type: 'strategy_plugins', dir: absDir, err_code: code },
        `cannot read strategies directory ${absDir}: ${(err as Error).message}; built-in strategies only`,
      );
    }
    return [];
  }

  const results: PluginLoadResult[] = [];
  for (const name of names) {
    const file = join(absDir, name);
    // Follows symlinks; a directory named `x.js` is not a plugin.
    const isFile = await stat(file).then(
      (s) => s.isFile(),
      () => false,
    );
    if (!isFile) continue;
    const result = await loadOne(file, registry, log, timeoutMs);
    results.push(result);
    if (result.registered.length > 0)
      log.info(
        { event_type: 'strategy_plugin_loaded', file, strategies: result.registered },
        `strategy plugin ${name}: registered ${result.registered.join(', ')}`,
      );
    for (const problem of result.problems)
      log.warn(
        { event_type: 'strategy_plugin_skipped', file, problem },
        `strategy plugin ${name} skipped${result.registered.length > 0 ? ' in part' : ''}: ${problem}`,
      );
  }
  return results;
}

async function loadOne(file: string, registry: StrategyRegistry, log: Logger, timeoutMs: number) {
  const result: PluginLoadResult = { file, registered: [], problems: [] };
  let mod: Record<string, unknown>;
  try {
    mod = (await withTimeout(import(pathToFileURL(file).href), timeoutMs, 'import')) as Record<string, unknown>;
  } catch (err) {
    result.problems.push(`failed to load: ${messageOf(err)}`);
    return result;
  }
  const register = typeof mod.register === 'function' ? mod.register : mod.default;
  if (typeof register !== 'function') {
    result.problems.push('exports no register function (export `register`, or a default function)');
    return result;
  }
  const pluginLog = log.child({ plugin: file });
  const api: StrategyPluginApi = Object.freeze({
    apiVersion: 1,
    log: Object.freeze({
      info: (msg: string, details: Record<string, unknown> = {}) => pluginLog.info(details, msg),
      warn: (msg: string, details: Record<string, unknown> = {}) => pluginLog.warn(details, msg),
    }),
  });
  let returned: unknown;
  try {
    // Promise.resolve().then: a register that throws synchronously becomes a rejection too.
    returned = await withTimeout(
      Promise.resolve().then(() => (register as (a: StrategyPluginApi) => unknown)(api)),
      timeoutMs,
      'register',
    );
  } catch (err) {
    result.problems.push(`register threw: ${messageOf(err)}`);
    return result;
  }
  if (returned === undefined || returned === null) {
    result.problems.push(`register returned ${String(returned)}, expected a strategy or an array of strategies`);
    return result;
  }
  const candidates: unknown[] = Array.isArray(returned) ? returned : [returned];
  if (candidates.length === 0) result.problems.push('register returned no strategies (an empty array)');
  for (const candidate of candidates) {
    const problem = registry.add(candidate, file);
    if (problem) result.problems.push(problem);
    else result.registered.push((candidate as { name: string }).name);
  }
  return result;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    // Not unref'd: at start nothing else may hold the event loop open, and an unref'd timer
    // would let a plugin that never settles end the process silently instead of timing out.
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : `threw ${describe(err)}`;
}
