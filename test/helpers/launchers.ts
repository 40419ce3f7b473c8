/** Pieces of the launcher tests: the launched-server fixture, a launch context, killing a pid. */
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { Config } from '../../src/config/schema.ts';
import type { LaunchContext } from '../../src/launchers/types.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { configFrom } from './gateway.ts';

export const LAUNCHED_SERVER = fileURLToPath(new URL('../fixtures/launched-server.mjs', import.meta.url));

/** GET http://127.0.0.1:port/ and parse the launched-server fixture's JSON answer. */
export async function askServer(port: number): Promise<{ token: string; pid: number }> {
  const r = await request(`http://127.0.0.1:${port}/`);
  return (await r.body.json()) as { token: string; pid: number };
}

export function testConfig(obj: Record<string, unknown>): Config {
  return configFrom(obj);
}

export function launchCtx(
  serviceId: string,
  opts: { machineId?: string; host?: string; port?: number; signal?: AbortSignal } = {},
): LaunchContext {
  const host = opts.host ?? '127.0.0.1';
  const machine = opts.machineId ?? 'local';
  return {
    serviceId,
    machine: { id: machine, host },
    vars: { host, machine, port: String(opts.port ?? 0), service: serviceId },
    log: silentLogger(),
    signal: opts.signal ?? new AbortController().signal,
  };
}

/** Kill a process we started (by PID), ignoring "already gone". */
export function killPid(pid: number, signal: NodeJS.Signals = 'SIGTERM'): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}
