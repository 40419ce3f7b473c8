import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { loadConfig } from '../config/loader.ts';
import { type Gateway, startGateway } from '../main.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { parseCommandArgs } from './args.ts';
import { HEAP_GROWING_PERCENT, tuneHeapForProxying } from './heap-tuning.ts';
import { type CliIo, dbPathIn, isProcessStdout, loadConfigIn, withDefaults } from './io.ts';

export const SERVE_USAGE = `usage: hestia [serve] [--config FILE] [--port PORT] [--host HOST] [--watch]
  Run the gateway in the foreground.
  -c, --config FILE  the config file (default: $HESTIA_CONFIG_PATH, else ./hestia_config.yml)
  -p, --port PORT    listen on this port instead of server.port / HESTIA_PORT
      --host HOST    listen on this address instead of server.host / HESTIA_HOST
      --watch        reload the config when its file changes (SIGHUP always reloads)
  -h, --help         this text
`;

/**
 * `hestia serve [--config FILE] [--port PORT] [--host HOST] [--watch]`: run the gateway in the
 * foreground. SIGTERM/SIGINT shut down gracefully (exit 0). SIGHUP — and, with --watch, any
 * change to the config file — re-reads the config: a valid one replaces the old without
 * dropping in-flight or queued requests; an invalid one is logged and ignored (SPEC §3).
 */
export async function serveCommand(argv: string[], io: CliIo = withDefaults()): Promise<number | undefined> {
  const parsed = parseCommandArgs(io, 'hestia serve', SERVE_USAGE, argv, {
    config: { type: 'string', short: 'c' },
    watch: { type: 'boolean', default: false },
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
  });
  if (!parsed.ok) return parsed.code;
  const { values } = parsed;
  let port: number | undefined;
  if (values.port !== undefined) {
    port = /^\d{1,5}$/.test(values.port) ? Number(values.port) : Number.NaN;
    if (!(port >= 0 && port <= 65535)) {
      io.stderr.write(`hestia serve: --port must be a port number (0-65535), got '${values.port}'\n`);
      return 2;
    }
  }
  if (values.host === '') {
    io.stderr.write('hestia serve: --host must not be empty\n');
    return 2;
  }
  const loaded = loadConfigIn(io, values.config);
  if (!loaded.ok) {
    io.stderr.write(`${loaded.message}\n`);
    return 1;
  }
  const log = createLogger({
    level: loaded.config.server.log_level,
    ...(isProcessStdout(io) ? {} : { destination: io.stdout }),
  });
  // The process's own V8 setting (heap-tuning.ts); not when a test runs the command in-process.
  if (isProcessStdout(io)) {
    const heap = tuneHeapForProxying();
    log.debug(
      {
        event_type: 'heap_tuning',
        heap_growing_percent: heap === 'set' ? HEAP_GROWING_PERCENT : 'from the command line',
      },
      heap === 'set'
        ? `V8 heap growing factor set to ${1 + HEAP_GROWING_PERCENT / 100} (--heap-growing-percent=${HEAP_GROWING_PERCENT})`
        : "V8 heap growing factor: node's --heap-growing-percent from the command line",
    );
  }
  loaded.config.server.db_path = dbPathIn(io, loaded.config.server.db_path);
  // Where things are: a service manager starts the command anywhere, so say it on every start.
  const dbPath = loaded.config.server.db_path;
  const database = dbPath === ':memory:' ? dbPath : resolve(io.cwd, dbPath);
  log.info(
    { event_type: 'paths', config: loaded.path, database },
    `config: ${loaded.path ?? 'built-in defaults'}; database: ${database}`,
  );
  for (const w of loaded.warnings) log.warn({ event_type: 'config_warning' }, w);
  for (const n of loaded.notes) log.info({ event_type: 'config_note' }, n);
  // SIGHUP is handled from the very start: its default action would kill the process, and the
  // 'listening' line can be out before startGateway returns. A reload asked for meanwhile runs
  // once the gateway exists.
  const configPath = loaded.path;
  const { signals } = io;
  let gateway: Gateway | undefined;
  let pendingReload: string | undefined;
  const reload = (why: string) => {
    if (gateway) reloadConfig(gateway, configPath, io, log, why);
    else pendingReload = why;
  };
  const onHup = () => reload('SIGHUP');
  signals.on('SIGHUP', onHup);
  // SIGTERM and SIGINT too: a stop asked for while the gateway starts (a service manager, a
  // Ctrl-C) would otherwise kill it with the default action, mid-start. It is kept and carried
  // out once the gateway exists, as a graceful shutdown.
  let stopAsked: NodeJS.Signals | undefined;
  let onStop: ((sig: NodeJS.Signals) => void) | undefined;
  const onStopSignal = (sig: NodeJS.Signals) => {
    if (onStop) onStop(sig);
    else stopAsked ??= sig;
  };
  signals.on('SIGTERM', onStopSignal);
  signals.on('SIGINT', onStopSignal);
  const watcher = values.watch ? watchConfig(configPath, log, () => reload('file changed')) : undefined;
  try {
    gateway = await startGateway({
      config: loaded.config,
      configPath: loaded.path,
      logger: log,
      ...(port === undefined ? {} : { port }),
      ...(values.host === undefined ? {} : { host: values.host }),
    });
  } catch (err) {
    signals.off('SIGHUP', onHup);
    signals.off('SIGTERM', onStopSignal);
    signals.off('SIGINT', onStopSignal);
    watcher?.close();
    // Before listening (store unusable, address taken): one clear line, exit 1.
    log.flush();
    io.stderr.write(`hestia: ${(err as Error).message}\n`);
    return 1;
  }
  const running = gateway;
  if (pendingReload && !stopAsked) reload(pendingReload);

  await new Promise<void>((resolve) => {
    onStop = (sig: NodeJS.Signals) => {
      onStop = () => {};
      log.info({ event_type: 'shutdown', signal: sig }, `received ${sig}, shutting down`);
      signals.off('SIGTERM', onStopSignal);
      signals.off('SIGINT', onStopSignal);
      signals.off('SIGHUP', onHup);
      watcher?.close();
      running.close().then(resolve, (err: unknown) => {
        log.error({ err }, 'error during shutdown');
        resolve();
      });
    };
    if (stopAsked) onStop(stopAsked);
  });
  log.flush();
  return 0;
}

function reloadConfig(gateway: Gateway, path: string | null, io: CliIo, log: Logger, why: string): void {
  if (path === null) {
    log.warn(
      { event_type: 'config_reload_skipped' },
      `${why}: running on built-in defaults, there is no file to re-read`,
    );
    return;
  }
  const next = loadConfig({ path, env: io.env });
  if (next.ok) next.config.server.db_path = dbPathIn(io, next.config.server.db_path);
  if (!next.ok) {
    // The old config stays in force: a typo in the file must not take the gateway down.
    log.error(
      { event_type: 'config_reload_failed', problems: next.issues.length },
      `${why}: ${next.message} (keeping the current config)`,
    );
    return;
  }
  for (const w of next.warnings) log.warn({ event_type: 'config_warning' }, w);
  gateway.reload(next.config).then(
    ({ restartNeeded }) => {
      if (restartNeeded.length > 0)
        log.warn(
          { event_type: 'config_restart_needed', keys: restartNeeded },
          `${why}: ${restartNeeded.join(', ')} changed; these take effect after a restart`,
        );
    },
    (err: unknown) =>
      // A port door that cannot be bound: the old config stays in force (main.ts reload).
      log.error(
        { event_type: 'config_reload_failed', problems: 1 },
        `${why}: ${path}: ${err instanceof Error ? err.message : String(err)} (keeping the current config)`,
      ),
  );
}

/**
 * Watch the config file's directory (editors replace files by rename, which a watch on the file
 * itself loses) and call `onChange` once per burst of events.
 */
function watchConfig(path: string | null, log: Logger, onChange: () => void): FSWatcher | undefined {
  if (path === null) {
    log.warn(
      { event_type: 'config_watch_skipped' },
      '--watch: running on built-in defaults, there is no file to watch',
    );
    return undefined;
  }
  const name = basename(path);
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(path), (_event, file) => {
    if (file !== null && file !== name) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, 150);
  });
  watcher.on('close', () => clearTimeout(timer));
  watcher.on('error', (err) =>
    log.error({ event_type: 'config_watch_failed', err: err.message }, `--watch: ${err.message}`),
  );
  return watcher;
}
