/**
 * Shared pieces of the launcher tests: back-end detection (tests skip with a reason when a
 * back end is not set up; scripts/ci/setup-backends.sh sets them all up), a free port, a
 * launch context, and bounded polls for conditions no system signals (a detached remote
 * server's port opening or closing).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client, request } from 'undici';
import type { Config } from '../../src/config/schema.ts';
import type { LaunchContext } from '../../src/launchers/types.ts';
import { silentLogger } from '../../src/observability/logger.ts';
import { configFrom } from '../helpers/gateway.ts';

const run = promisify(execFile);

export const CI_DIR = process.env.HESTIA_CI_DIR ?? '/tmp/hestia-ci';
export const SSH_DIR = `${CI_DIR}/ssh`;
export const SLURM_CONF = `${CI_DIR}/slurm/slurm.conf`;
export const PODMAN_SOCK = `${CI_DIR}/podman.sock`;
export const LAUNCHED_SERVER = fileURLToPath(new URL('../fixtures/launched-server.mjs', import.meta.url));
export const SETUP_HINT = 'run scripts/ci/setup-backends.sh';

function tcpOpen(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Why the CI sshd cannot be used, or null when it can. */
/**
 * CI (.ci/run sets HESTIA_REQUIRE_BACKENDS=1 after setting them up) must never pass by skipping:
 * there a missing back end fails the test file instead of skipping it.
 */
function required(reason: string | null): string | null {
  if (reason !== null && process.env.HESTIA_REQUIRE_BACKENDS === '1')
    throw new Error(`${reason}; HESTIA_REQUIRE_BACKENDS=1 requires every launcher back end`);
  return reason;
}

export async function sshdUnavailable(): Promise<string | null> {
  return required(await sshdUnavailableCheck());
}

async function sshdUnavailableCheck(): Promise<string | null> {
  for (const f of ['client_key', 'known_hosts', 'wrong_key']) {
    if (!existsSync(`${SSH_DIR}/${f}`)) return `sshd back end not set up (${SSH_DIR}/${f} missing; ${SETUP_HINT})`;
  }
  if (!(await tcpOpen(2222))) return `sshd not listening on 127.0.0.1:2222 (${SETUP_HINT})`;
  return null;
}

/** Why the CI Slurm cluster cannot be used, or null when it can. */
export async function slurmUnavailable(): Promise<string | null> {
  return required(await slurmUnavailableCheck());
}

async function slurmUnavailableCheck(): Promise<string | null> {
  if (!existsSync(SLURM_CONF)) return `Slurm back end not set up (${SLURM_CONF} missing; ${SETUP_HINT})`;
  try {
    const { stdout } = await run('sinfo', ['-h', '-n', 'localhost', '-o', '%t'], {
      env: { ...process.env, SLURM_CONF },
      timeout: 10_000,
    });
    if (stdout.trim() !== 'idle' && stdout.trim() !== 'mix' && stdout.trim() !== 'alloc')
      return `Slurm node 'localhost' not usable (state '${stdout.trim()}'; ${SETUP_HINT})`;
  } catch (err) {
    return `Slurm not answering (${(err as Error).message.split('\n')[0]}; ${SETUP_HINT})`;
  }
  return null;
}

/** Why the CI podman Docker API cannot be used, or null when it can. */
export async function podmanUnavailable(): Promise<string | null> {
  return required(await podmanUnavailableCheck());
}

async function podmanUnavailableCheck(): Promise<string | null> {
  if (!existsSync(PODMAN_SOCK)) return `podman API socket ${PODMAN_SOCK} missing (${SETUP_HINT})`;
  const client = new Client('http://d', { socketPath: PODMAN_SOCK });
  try {
    const r = await request('http://d/_ping', { dispatcher: client });
    const text = await r.body.text();
    if (text !== 'OK') return `podman API at ${PODMAN_SOCK} answered '${text}' to _ping`;
  } catch (err) {
    return `podman API at ${PODMAN_SOCK} not answering (${(err as Error).message}; ${SETUP_HINT})`;
  } finally {
    await client.close();
  }
  return null;
}

/** A port that was free a moment ago (bind :0 on 127.0.0.1, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Poll `check` every `intervalMs` until it returns true, at most `timeoutMs`. For
 * conditions no system signals (a detached remote server opening its port); rejects with
 * `what` in the message on expiry.
 */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 15_000, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export const portOpen = (port: number) => tcpOpen(port);

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
