/** Ports for tests: a free one, one that refuses connections, and whether one is open. */
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';

/**
 * A port free on `host` (default 127.0.0.1) a moment ago: bind :0, read it, close. For a
 * server the test starts later (a fixture that needs its port up front); for one the test
 * starts itself, listen on 0 instead (startUpstream does).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, host, resolve);
  });
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === 'string') throw new Error('no port');
  return addr.port;
}

/** Whether something accepts TCP connections on host:port (false after timeoutMs). */
export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
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

/** The lowest port the kernel hands out for `listen(0)` (Linux; 32768 elsewhere). */
function ephemeralLow(): number {
  try {
    const low = Number.parseInt(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8'), 10);
    return Number.isFinite(low) && low > 11_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

/**
 * A port on 127.0.0.1 that refuses connections. It is taken *below* the kernel's ephemeral range
 * and checked free by binding it once: every other test (and test file running in parallel)
 * gets its ports from `listen(0)`, i.e. from the ephemeral range, so none can start listening on
 * this one later. (A port bound with `listen(0)` and closed could be handed to another test's
 * server a moment later, which then answered the "dead" instance: a flake seen once in CI.)
 */
export async function refusedPort(): Promise<number> {
  const high = ephemeralLow() - 1;
  for (let attempt = 0; ; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (high - 10_000));
    const s = createServer();
    const bound = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (bound) {
      await new Promise<void>((resolve) => s.close(() => resolve()));
      return port;
    }
    if (attempt > 50) throw new Error('no free port below the ephemeral range');
  }
}
