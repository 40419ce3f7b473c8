/**
 * Shared helpers of the lifecycle tests: free ports, temp dirs, the fixture upstream's argv,
 * an event recorder with bounded waits (no fixed sleeps as synchronisation), /proc liveness.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../src/config/schema.ts';
import { MachinePlacement } from '../../src/machines/machine-placement.ts';
import { EventBus, type EventType, type HestiaEvent } from '../../src/observability/events.ts';
import { createLogger, type Logger } from '../../src/observability/logger.ts';
import { type RegistryOptions, ServiceRegistry } from '../../src/services/service-registry.ts';
import type { Store } from '../../src/store/store.ts';
import { configFrom } from '../helpers/gateway.ts';

export const FIXTURE = fileURLToPath(new URL('../fixtures/lifecycle-upstream.mjs', import.meta.url));

/** A port that was free a moment ago (the fixture needs it before it starts). */
export async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

export function tempDir(): { dir: string; path(name: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'hestia-lifecycle-'));
  return { dir, path: (n) => join(dir, n), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** argv of the fixture upstream (`{port}` left for the launcher to expand). */
export function fixtureArgv(...flags: string[]): string[] {
  return [process.execPath, FIXTURE, '--port', '{port}', ...flags];
}

/** A process service on the fixture at `port`. */
export function fixtureService(port: number, flags: string[], extra: Record<string, unknown> = {}) {
  return {
    base_url: `http://127.0.0.1:${port}`,
    health_url: `http://127.0.0.1:${port}/health`,
    health_interval_ms: 20,
    start_timeout_ms: 20_000,
    launcher: { type: 'process', command: fixtureArgv(...flags), stop_timeout_ms: 3_000 },
    ...extra,
  };
}

export function readPids(file: string): number[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
}

/** Lines in a file (0 when it does not exist yet). */
export function countLines(file: string): number {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).length : 0;
}

/** Alive and not a zombie (/proc/<pid>/stat state). */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Poll `cond` until true or `timeoutMs` passes (then throw, naming `what`). */
export async function waitFor(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Records every event of a bus; `next` waits (bounded) for one not yet consumed. */
export class EventRecorder {
  readonly events: HestiaEvent[] = [];
  private waiters: Array<() => void> = [];
  constructor(bus: EventBus) {
    bus.on('event', (ev) => {
      this.events.push(ev);
      for (const w of this.waiters.splice(0)) w();
    });
  }
  of(type: EventType, serviceId?: string): HestiaEvent[] {
    return this.events.filter((e) => e.type === type && (serviceId === undefined || e.serviceId === serviceId));
  }
  /** Resolve with the `n`-th (1-based) event of `type`, waiting for it when needed. */
  async nth(type: EventType, n: number, timeoutMs = 15_000): Promise<HestiaEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.of(type)[n - 1];
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`timed out waiting for event ${type} #${n}; saw ${this.events.map((e) => e.type).join(', ')}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
}

/** Captured JSON log lines. */
export function captureLogger(): { log: Logger; lines(): Array<Record<string, unknown>> } {
  let text = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      text += chunk.toString();
      cb();
    },
  });
  return {
    log: createLogger({ level: 'debug', destination: sink }),
    lines: () =>
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

export interface TestRegistry {
  registry: ServiceRegistry;
  bus: EventBus;
  events: EventRecorder;
  config: Config;
  logs(): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** A registry (no HTTP) for the given services, with events recorded and logs captured. */
export function startRegistry(services: Record<string, unknown>, store: Store | null = null): TestRegistry {
  const config = configFrom({ services });
  const bus = new EventBus();
  const events = new EventRecorder(bus);
  const { log, lines } = captureLogger();
  const { registry } = registryWithMachines({ config, bus, log, store });
  return { registry, bus, events, config, logs: lines, close: () => registry.close() };
}

/**
 * A registry wired like src/main.ts: the machines placement (rules, capacity, wake/sleep) on the
 * registry's config, asking the registry's runtimes for eviction.
 */
export function registryWithMachines(opts: Omit<RegistryOptions, 'placement'>): {
  registry: ServiceRegistry;
  placement: MachinePlacement;
} {
  const placement: MachinePlacement = new MachinePlacement({
    getConfig: () => registry.config,
    bus: opts.bus,
    log: opts.log,
    services: () => registry.all(),
  });
  const registry: ServiceRegistry = new ServiceRegistry({ ...opts, placement });
  return { registry, placement };
}

/** A plain upstream run by the test itself (for the `none` launcher). */
export async function startUpstream(
  port = 0,
  handler?: (path: string) => { status: number; body: unknown },
): Promise<{ server: Server; port: number; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(req.url ?? '/');
    const r = handler?.(req.url ?? '/') ?? { status: 200, body: { ok: true, path: req.url } };
    res.writeHead(r.status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(r.body));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return {
    server,
    port: addr.port,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
