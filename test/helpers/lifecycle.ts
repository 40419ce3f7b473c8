/**
 * Pieces of the lifecycle tests (services, machines, observability, launchers): the fixture
 * upstream program (test/fixtures/lifecycle-upstream.mjs) and services on it, temp dirs,
 * pid files, /proc liveness, and a registry without HTTP.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../src/config/schema.ts';
import { type MachineInfo, MachinePlacement } from '../../src/machines/machine-placement.ts';
import { EventBus } from '../../src/observability/events.ts';
import type { PolicyClock } from '../../src/services/policy-clock.ts';
import { type RegistryOptions, ServiceRegistry } from '../../src/services/service-registry.ts';
import type { Store } from '../../src/store/store.ts';
import { captureLogger, EventRecorder } from './events.ts';
import { configFrom } from './gateway.ts';

export const FIXTURE = fileURLToPath(new URL('../fixtures/lifecycle-upstream.mjs', import.meta.url));

export function tempDir(): { dir: string; path(name: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'hestia-lifecycle-'));
  return { dir, path: (n) => join(dir, n), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * The scaffolding of a test file that starts registries or gateways: a temp dir removed after
 * the file, and `keep(x)`, which hands back `x` and closes it after the test that made it (pass
 * or fail).
 */
export function closedAfterEachTest(): {
  tmp: ReturnType<typeof tempDir>;
  keep<T extends { close(): Promise<unknown> }>(x: T): T;
} {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  let current: { close(): Promise<unknown> } | null = null;
  afterEach(async () => {
    await current?.close();
    current = null;
  });
  return {
    tmp,
    keep: (x) => {
      current = x;
      return x;
    },
  };
}

/** argv of the fixture upstream (`{port}` left for the launcher to expand). */
export function fixtureArgv(...flags: string[]): string[] {
  return [process.execPath, FIXTURE, '--port', '{port}', ...flags];
}

/**
 * A process service on `port` that fails its start (stderr "model file missing", exit 3) until the
 * file `flag` exists, then runs the fixture upstream. `preface` is a shell command run first
 * (e.g. an `echo` for the output tests).
 */
export function failsUntilFlag(
  port: number,
  flag: string,
  extra: Record<string, unknown> = {},
  preface = '',
): Record<string, unknown> {
  return {
    base_url: `http://127.0.0.1:${port}`,
    health_url: `http://127.0.0.1:${port}/health`,
    health_interval_ms: 20,
    ...extra,
    launcher: {
      type: 'process',
      command: `${preface}[ -f '${flag}' ] || { echo 'model file missing' >&2; exit 3; }; exec '${process.execPath}' '${FIXTURE}' --port {port}`,
    },
  };
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

export interface TestRegistry {
  registry: ServiceRegistry;
  /** Machines with capacity, allocation and power state (what `GET /v1/machines` lists). */
  machines(): MachineInfo[];
  bus: EventBus;
  events: EventRecorder;
  config: Config;
  logs(): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** A registry (no HTTP) for the given services, with events recorded and logs captured. */
export function startRegistry(services: Record<string, unknown>, store: Store | null = null): TestRegistry {
  return registryFor({ services }, store);
}

/** A registry (no HTTP) for a whole config object (machines, rules, services); `policyClock` for keep-warm tests. */
export function registryFor(
  obj: Record<string, unknown>,
  store: Store | null = null,
  policyClock?: PolicyClock,
): TestRegistry {
  const config = configFrom(obj);
  const bus = new EventBus();
  const events = new EventRecorder(bus);
  const { log, lines } = captureLogger();
  const { registry, placement } = registryWithMachines({
    config,
    bus,
    log,
    store,
    ...(policyClock ? { policyClock } : {}),
  });
  return {
    registry,
    machines: () => placement.describe(),
    bus,
    events,
    config,
    logs: lines,
    close: () => registry.close(),
  };
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
