/**
 * The composition root: given a resolved config, build every collaborator once, wire the
 * listeners to the event bus, and start listening. Tests call `startGateway` in-process;
 * the CLI's `serve` calls it and adds signal handling.
 */
import type { AddressInfo } from 'node:net';
import { setupAuth } from './auth/setup.ts';
import type { Config } from './config/schema.ts';
import type { GatewayContext } from './gateway-context.ts';
import { MachinePlacement } from './machines/machine-placement.ts';
import { EventHub } from './observability/event-stream.ts';
import { EventBus, type HestiaEvent } from './observability/events.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { GatewayMetrics } from './observability/metrics.ts';
import { RequestTimeline } from './observability/request-timeline.ts';
import { WebhookDispatcher } from './observability/webhooks.ts';
import { createProxyHandler } from './proxy/handler.ts';
import { RoutingTable } from './routing/router.ts';
import { buildHttpApp } from './server/app.ts';
import { PortDoors } from './server/doors.ts';
import { ServiceRegistry } from './services/service-registry.ts';
import { Store } from './store/store.ts';

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
  /**
   * Replace the config (SIGHUP / --watch, SPEC §3) without dropping in-flight or queued
   * requests: services take their new settings, new ones are added cold, removed ones are
   * stopped. Settings bound at start (listen address, database file) need a restart: they are
   * returned so the caller can say so. Port doors (`listen`) follow: a port that cannot be
   * bound rejects, naming service and port, and the old config stays in force.
   */
  reload(next: Config): Promise<{ restartNeeded: string[] }>;
  /** `http://host:port` of each service's port door (`listen`), as bound. */
  portDoorUrls(): Record<string, string>;
  /** Graceful shutdown (SPEC §1): stop accepting, drain, stop children, persist. */
  close(): Promise<void>;
}

/** Pending-connection queue of the listening socket (see startGateway). */
const LISTEN_BACKLOG = 2048;

/** Config keys read once at start; a reload that changes them is reported, not applied. */
function startOnlyChanges(prev: Config, next: Config): string[] {
  const changed: string[] = [];
  for (const k of ['host', 'port', 'db_path', 'request_idle_timeout_ms'] as const)
    if (prev.server[k] !== next.server[k]) changed.push(`server.${k}`);
  if (prev.strategies_dir !== next.strategies_dir) changed.push('strategies_dir');
  return changed;
}

/** Event types that mean something went wrong (logged at warn). */
const WARN_EVENTS = new Set([
  'service_start_failed',
  'service_crashed',
  'queue_rejected',
  'queue_timeout',
  'proxy_error',
]);

/** The logger's view of the event stream: one line per event, with its type as event_type. */
export function logEvent(log: Logger, ev: HestiaEvent): void {
  // auth/setup.ts logs refusals itself, with a message of its own (and throttled).
  if (ev.type === 'auth_denied') return;
  const fields = { ...ev.details, event_type: ev.type, service_id: ev.serviceId, machine_id: ev.machineId ?? null };
  const what = ev.serviceId ? `${ev.type} ${ev.serviceId}` : ev.type;
  const reason = typeof ev.details.reason === 'string' ? `: ${ev.details.reason}` : '';
  if (WARN_EVENTS.has(ev.type)) log.warn(fields, `${what}${reason}`);
  else log.info(fields, what);
}

/**
 * Build and start the gateway. Throws (before listening) when the store cannot be opened —
 * a StoreError naming the file — or the address is taken; the CLI turns that into exit 1.
 */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const log = opts.logger ?? createLogger({ level: opts.config.server.log_level });
  const bus = new EventBus();
  let config = opts.config;
  let shuttingDown = false;

  const store = Store.open({
    path: config.server.db_path,
    retentionMaxEvents: config.events.retention_max_events,
    retentionMaxAgeDays: config.events.retention_max_age_days,
    onError: (err) => log.error({ event_type: 'store_error', err: err.message }, err.message),
  });
  // Listeners first, so that even the events of re-adoption are stored, streamed, logged and
  // counted. The live stream (SSE) goes out after the store write, carrying the row id, so a
  // client that reconnects with Last-Event-ID resumes from the store without a gap.
  const eventHub = new EventHub();
  bus.on('event', (ev) => eventHub.publish(ev, store.appendEvent(ev)));
  bus.on('event', (ev) => logEvent(log, ev));

  // The lifecycle (services/) receives its placement: machines/ implements the seam, and asks
  // the registry's runtimes (read when it needs them, never during construction) for eviction.
  const placement: MachinePlacement = new MachinePlacement({
    getConfig: () => config,
    bus,
    log,
    services: () => services.all(),
  });
  const services: ServiceRegistry = new ServiceRegistry({ config, bus, log, store, placement });
  // The key table lives in the store's file (its migration is in store/migrations.ts).
  const authSetup = setupAuth({ config: () => config, bus, log, db: store.database });
  // Metrics: lifecycle counters from the bus, per-request ones from the proxy's observer.
  const metrics = new GatewayMetrics({
    services: () => services,
    authMetrics: () => authSetup.auth.metrics(),
    machineIds: () => config.machines,
  });
  bus.on('event', (ev) => metrics.onEvent(ev));
  // The dashboard's per-service timelines: from the same two feeds.
  const timeline = new RequestTimeline();
  bus.on('event', (ev) => timeline.onEvent(ev));
  // Event webhooks: onEvent only queues; delivery never holds up a transition.
  const webhooks = new WebhookDispatcher({ bus, log, registry: metrics.registry });
  webhooks.configure(config.webhooks);
  bus.on('event', (ev) => webhooks.onEvent(ev));
  try {
    await services.restore();
  } catch (err) {
    await services.close();
    authSetup.close();
    webhooks.close();
    store.close();
    throw err;
  }
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
    machines: { list: () => placement.describe() },
    bus,
    log,
    auth: authSetup.auth,
    routing,
    store,
    get shuttingDown() {
      return shuttingDown;
    },
  };

  const proxy = createProxyHandler(ctx, {
    onRequestEnd(info) {
      metrics.onRequestEnd(info);
      timeline.onRequestEnd(info);
    },
  });
  const { server, fastify, front } = await buildHttpApp(ctx, proxy, { metrics, events: eventHub, timeline });

  const host = opts.host ?? config.server.host;
  const port = opts.port ?? config.server.port;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // A burst of new connections (1,000 clients hitting a cold service at once) overflowed
      // Node's default backlog of 511: dropped SYNs are retried by the client after ~1 s. The
      // kernel caps this at net.core.somaxconn.
      server.listen({ host, port, backlog: LISTEN_BACKLOG }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await services.close();
    authSetup.close();
    webhooks.close();
    store.close();
    throw err;
  }
  // Port doors (SPEC §10) bind like the main listener; one that cannot be bound fails the start.
  const portDoors = new PortDoors(front, proxy, host);
  try {
    await portDoors.sync(config);
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await services.close();
    authSetup.close();
    webhooks.close();
    store.close();
    throw err;
  }
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${urlHost}:${addr.port}`;
  log.info({ event_type: 'listening', url }, `hestia listening on ${url}`);
  const doorUrls = portDoors.urls();
  if (Object.keys(doorUrls).length > 0)
    log.info({ event_type: 'port_doors', doors: doorUrls }, `port doors: ${JSON.stringify(doorUrls)}`);
  authSetup.announce(url);

  let closing: Promise<void> | undefined;
  return {
    url,
    port: addr.port,
    ctx,
    portDoorUrls: () => portDoors.urls(),
    async reload(next) {
      if (shuttingDown) return { restartNeeded: [] };
      await portDoors.sync(next); // throws before anything changed
      log.info({ event_type: 'port_doors', doors: portDoors.urls() }, 'port doors after reload');
      const restartNeeded = startOnlyChanges(config, next);
      const before = new Set(Object.keys(config.services));
      const after = Object.keys(next.services);
      // Keep what cannot change live, so the gateway never half-applies a new listen address.
      config = {
        ...next,
        server: { ...next.server, host: config.server.host, port: config.server.port, db_path: config.server.db_path },
        strategies_dir: config.strategies_dir,
      };
      services.reconfigure(config);
      webhooks.configure(config.webhooks);
      bus.publish('config_reloaded', null, {
        added: after.filter((id) => !before.has(id)),
        removed: [...before].filter((id) => !after.includes(id)),
        restart_needed: restartNeeded,
      });
      return { restartNeeded };
    },
    close() {
      closing ??= (async () => {
        shuttingDown = true;
        const grace = config.server.shutdown_grace_ms;
        const deadline = Date.now() + grace;
        // Queued requests get their 503 now, while their connections are still open.
        services.beginShutdown();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        const doorsClosed = portDoors.close();
        server.closeIdleConnections();
        const timer = setTimeout(() => {
          server.closeAllConnections();
          portDoors.closeAllConnections();
          // Upgraded (WebSocket) sockets are no longer HTTP connections, yet server.close()
          // waits for them: only the proxy can cut its tunnels.
          proxy.close().catch(() => {});
        }, grace);
        // In-flight requests (leases) finish within the grace period...
        await services.drain(deadline);
        // ...and keep-alive connections that went idle meanwhile are closed. Event streams never
        // end by themselves: they are ended here (their sockets close with them), or server.close()
        // would wait for them until the grace period runs out.
        eventHub.close();
        server.closeIdleConnections();
        portDoors.closeIdleConnections();
        await closed;
        await doorsClosed;
        clearTimeout(timer);
        await fastify.close().catch(() => {});
        await proxy.close();
        // Local children are stopped and final states written before the store closes.
        await services.finishShutdown();
        webhooks.close();
        authSetup.close();
        store.close();
        log.info({ event_type: 'shutdown_complete' }, 'hestia stopped');
        config = opts.config;
      })();
      return closing;
    },
  };
}
