/**
 * Shared pieces of the machines tests: "machines" are distinct loopback addresses
 * (127.0.0.2, 127.0.0.3, …) on which the tests run plain upstreams, TCP listeners standing in
 * for a machine's ssh port, and UDP listeners for Wake-on-LAN.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { Config } from '../../src/config/schema.ts';
import type { MachineInfo } from '../../src/machines/machine-placement.ts';
import { EventBus } from '../../src/observability/events.ts';
import type { ServiceRegistry } from '../../src/services/service-registry.ts';
import { configFrom } from '../helpers/gateway.ts';
import { captureLogger, EventRecorder, registryWithMachines } from '../services/support.ts';

export interface Upstream {
  host: string;
  port: number;
  /** Requests seen, as `METHOD /path`. */
  hits: string[];
  close(): Promise<void>;
}

/**
 * An HTTP server on host:port (0 = any) answering `{machine: name, path}` with 200, except
 * paths listed in `status` (e.g. `{'/start': 500}`).
 */
export async function upstreamOn(
  host: string,
  name: string,
  opts: { port?: number; status?: Record<string, number>; onRequest?: (req: IncomingMessage) => void } = {},
): Promise<Upstream> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    opts.onRequest?.(req);
    req.resume();
    const code = opts.status?.[req.url ?? '/'] ?? 200;
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ machine: name, path: req.url }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return {
    host,
    port: addr.port,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A port free on `host` a moment ago. */
export async function freePortOn(host: string): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((resolve) => srv.listen(0, host, resolve));
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

/** A bare TCP listener (stands in for a machine's ssh port: only connects are checked). */
export async function tcpListener(host: string, port: number): Promise<{ close(): Promise<void> }> {
  const srv: NetServer = createNetServer((s) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, host, resolve);
  });
  return { close: () => new Promise<void>((resolve) => srv.close(() => resolve())) };
}

/** A UDP listener on 127.255.255.255 (loopback broadcast) recording every datagram. */
export async function udpListener(): Promise<{
  port: number;
  packets: Buffer[];
  next(): Promise<Buffer>;
  close(): void;
}> {
  const sock: Socket = createSocket({ type: 'udp4', reuseAddr: true });
  const packets: Buffer[] = [];
  const waiters: Array<(b: Buffer) => void> = [];
  sock.on('message', (msg) => {
    packets.push(msg);
    for (const w of waiters.splice(0)) w(msg);
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.255.255.255', resolve));
  return {
    port: sock.address().port,
    packets,
    next: () => new Promise<Buffer>((resolve) => waiters.push(resolve)),
    close: () => sock.close(),
  };
}

export interface MachineRegistry {
  registry: ServiceRegistry;
  /** Machines with capacity, allocation and power state (what `GET /v1/machines` lists). */
  machines(): MachineInfo[];
  bus: EventBus;
  events: EventRecorder;
  config: Config;
  close(): Promise<void>;
}

/** A registry (no HTTP) for a whole config (machines, rules, services). */
export function machineRegistry(obj: Record<string, unknown>): MachineRegistry {
  const config = configFrom(obj);
  const bus = new EventBus();
  const events = new EventRecorder(bus);
  const { log } = captureLogger();
  const { registry, placement } = registryWithMachines({ config, bus, log });
  return { registry, machines: () => placement.describe(), bus, events, config, close: () => registry.close() };
}
