/**
 * The composition root: given a resolved config, build every collaborator once, wire the
 * listeners to the event bus, and start listening. Tests call `startGateway` in-process;
 * the CLI's `serve` calls it and adds signal handling.
 */
import type { AddressInfo } from 'node:net';
import { setupAuth } from './auth/setup.ts';
import type { Config } from './config/schema.ts';
import { EventBus } from './observability/events.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { createProxyHandler } from './proxy/handler.ts';
import { RoutingTable } from './routing/router.ts';
import { buildHttpApp } from './server/app.ts';
import type { GatewayContext } from './server/context.ts';
import { ServiceRegistry } from './services/registry.ts';

export interface GatewayOptions {
  config: Config;
  /** Where the config came from (for reload and messages); null = built-in defaults. */
  configPath?: string | null;
  logger?: Logger;
  /** Override config.server.host/port (tests pass port 0). */
  host?: string;
  port?: number;
  /** Time source for routing cooldowns (tests inject one to pass a cooldown without waiting). */
  clock?: () => number;
}

export interface Gateway {
  /** `http://host:port` the gateway listens on. */
  readonly url: string;
  readonly port: number;
  readonly ctx: GatewayContext;
  /** Graceful shutdown (SPEC §1): stop accepting, drain, stop children, persist. */
  close(): Promise<void>;
}

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const log = opts.logger ?? createLogger({ level: opts.config.server.log_level });
  const bus = new EventBus();
  let config = opts.config;
  let shuttingDown = false;
  const services = new ServiceRegistry(config);
  const authSetup = setupAuth({ config: () => config, bus, log });
  // Plugins load once, at start; a broken one is logged and skipped (never fatal).
  const routing = await RoutingTable.create({
    getConfig: () => config,
    log,
    ...(opts.clock ? { clock: opts.clock } : {}),
  });

  const ctx: GatewayContext = {
    get config() {
      return config;
    },
    services,
    bus,
    log,
    auth: authSetup.auth,
    routing,
    get shuttingDown() {
      return shuttingDown;
    },
  };

  const proxy = createProxyHandler(ctx);
  const { server, fastify } = await buildHttpApp(ctx, proxy);

  const host = opts.host ?? config.server.host;
  const port = opts.port ?? config.server.port;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${urlHost}:${addr.port}`;
  log.info({ event_type: 'listening', url }, `hestia listening on ${url}`);
  authSetup.announce(url);

  let closing: Promise<void> | undefined;
  return {
    url,
    port: addr.port,
    ctx,
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        const grace = config.server.shutdown_grace_ms;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const timer = setTimeout(() => {
          server.closeAllConnections();
          // Upgraded (WebSocket) sockets are no longer HTTP connections, yet server.close()
          // waits for them: only the proxy can cut its tunnels.
          proxy.close().catch(() => {});
        }, grace);
        await closed;
        clearTimeout(timer);
        await fastify.close().catch(() => {});
        await proxy.close();
        await services.close();
        authSetup.close();
        config = opts.config;
      })();
      return closing;
    },
  };
}
