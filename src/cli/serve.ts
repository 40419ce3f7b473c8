import { parseArgs } from 'node:util';
import { loadConfig } from '../config/loader.ts';
import { startGateway } from '../main.ts';
import { createLogger } from '../observability/logger.ts';

export async function serveCommand(argv: string[]): Promise<number | undefined> {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' }, watch: { type: 'boolean', default: false } },
    allowPositionals: false,
  });
  const loaded = loadConfig({ path: values.config, env: process.env });
  if (!loaded.ok) {
    process.stderr.write(`${loaded.message}\n`);
    return 1;
  }
  const log = createLogger({ level: loaded.config.server.log_level });
  for (const w of loaded.warnings) log.warn({ event_type: 'config_warning' }, w);
  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway({ config: loaded.config, configPath: loaded.path, logger: log });
  } catch (err) {
    // Before listening (store unusable, address taken): one clear line, exit 1.
    log.flush();
    process.stderr.write(`hestia: ${(err as Error).message}\n`);
    return 1;
  }

  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      log.info({ event_type: 'shutdown', signal: sig }, `received ${sig}, shutting down`);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      gateway.close().then(resolve, (err: unknown) => {
        log.error({ err }, 'error during shutdown');
        resolve();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  log.flush();
  return 0;
}
