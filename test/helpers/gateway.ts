/**
 * Start a real gateway in-process on 127.0.0.1 with a free port, from a YAML string or a raw
 * config object, with logs captured in memory (so tests can grep them).
 */
import { Writable } from 'node:stream';
import { dump } from 'js-yaml';
import { resolveConfig } from '../../src/config/resolve.ts';
import { type Config, serverSchema } from '../../src/config/schema.ts';
import { type Gateway, startGateway } from '../../src/main.ts';
import { createLogger } from '../../src/observability/logger.ts';

export interface TestGateway extends Gateway {
  /** Every log line so far, parsed. */
  logs(): Array<Record<string, unknown>>;
  /** The raw log text (for grepping secrets). */
  logText(): string;
  config: Config;
}

export function configFrom(yamlOrObject: string | Record<string, unknown>, env: Record<string, string> = {}): Config {
  const text = typeof yamlOrObject === 'string' ? yamlOrObject : dump(yamlOrObject);
  const r = resolveConfig(text, env, { file: '<test>' });
  if (!r.ok) throw new Error(`test config invalid: ${r.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  return r.config;
}

export async function startTestGateway(
  yamlOrObject: string | Record<string, unknown>,
  opts: {
    env?: Record<string, string>;
    level?: 'debug' | 'info' | 'warn' | 'error';
    clock?: () => number;
    /** SQLite file. Default: the config's `server.db_path` if it sets one, else `:memory:`. */
    dbPath?: string;
  } = {},
): Promise<TestGateway> {
  const config = configFrom(yamlOrObject, opts.env);
  // Tests must never write the default ./data/hestia.db of the working tree.
  const DEFAULT_DB = serverSchema.parse({}).db_path;
  if (opts.dbPath !== undefined) config.server.db_path = opts.dbPath;
  else if (config.server.db_path === DEFAULT_DB) config.server.db_path = ':memory:';
  let text = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  const logger = createLogger({ level: opts.level ?? 'debug', destination: sink });
  const gw = await startGateway({
    config,
    logger,
    host: '127.0.0.1',
    port: 0,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });
  return Object.assign(gw, {
    config,
    logText: () => text,
    logs: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  });
}
