/**
 * What a CLI command touches of its process: output streams, stdin, environment, working
 * directory and signals. bin/hestia.mjs passes the real process (`processIo()`); tests call
 * `runCli(argv, io)` in-process with their own streams, environment and signal emitter, which
 * is what lets the CLI tests run without launching a node process per command.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHECKOUT_DB_PATH, defaultDbPath } from '../config/default-paths.ts';
import { type LoadResult, loadConfig } from '../config/loader.ts';

/** Enough of a writable stream for text output (and for pino, which only calls write). */
export interface CliOutput {
  write(chunk: string): unknown;
}

/** Enough of stdin: readable, and a terminal or not. */
export type CliInput = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown };

/** Where `serve` hears SIGTERM, SIGINT and SIGHUP (the process, or an EventEmitter in tests). */
export interface SignalSource {
  on(signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP', listener: (signal: NodeJS.Signals) => void): unknown;
  off(signal: 'SIGTERM' | 'SIGINT' | 'SIGHUP', listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface CliIo {
  stdout: CliOutput;
  stderr: CliOutput;
  stdin: CliInput;
  env: NodeJS.ProcessEnv;
  /** Relative paths (config file, database) are taken from here. */
  cwd: string;
  signals: SignalSource;
  /**
   * An installed command (the package without its sources) rather than a checkout: its default
   * database is `$XDG_STATE_HOME/hestia/hestia.db` instead of `./data/hestia.db`.
   */
  installed: boolean;
}

/** The package's own sources are beside it in a checkout, and absent from an installed package. */
function isInstalledPackage(): boolean {
  return !existsSync(fileURLToPath(new URL('../../src/', import.meta.url)));
}

/** The real process. */
export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    env: process.env,
    cwd: process.cwd(),
    signals: process,
    installed: isInstalledPackage(),
  };
}

/** Fill in what `io` leaves out from the real process. */
export function withDefaults(io: Partial<CliIo> = {}): CliIo {
  return { ...processIo(), ...io };
}

/** True when output goes to the process's own stdout (pino then gets its fast fd destination). */
export function isProcessStdout(io: CliIo): boolean {
  return io.stdout === process.stdout;
}

/** A path from the command line or the environment, relative to the command's cwd. */
export function pathIn(io: CliIo, path: string): string {
  if (io.cwd === process.cwd() || isAbsolute(path) || path === ':memory:') return path;
  return resolve(io.cwd, path);
}

/**
 * loadConfig, with relative paths (an explicit FILE, HESTIA_CONFIG_PATH, ./hestia_config.yml)
 * taken from `io.cwd`. For the real process that is exactly loadConfig.
 */
export function loadConfigIn(io: CliIo, path: string | undefined): LoadResult {
  const fromEnv = io.env.HESTIA_CONFIG_PATH;
  const env = fromEnv === undefined ? io.env : { ...io.env, HESTIA_CONFIG_PATH: pathIn(io, fromEnv) };
  return loadConfig({ path: path === undefined ? undefined : pathIn(io, path), env, cwd: io.cwd });
}

/**
 * The database file: `server.db_path` as configured, relative to `io.cwd`; left at its default,
 * an installed command keeps it under `$XDG_STATE_HOME/hestia/` (config/default-paths.ts).
 */
export function dbPathIn(io: CliIo, configured: string): string {
  if (configured === CHECKOUT_DB_PATH) return pathIn(io, defaultDbPath(io.env, io.installed));
  return pathIn(io, configured);
}
