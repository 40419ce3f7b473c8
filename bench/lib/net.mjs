/** Loopback helpers: free ports, simple GETs, waiting for a server to answer. */
import http from 'node:http';
import net from 'node:net';

export const HOST = '127.0.0.1';

/** A port that was free a moment ago on 127.0.0.1 (the kernel picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, HOST, () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** GET a URL on a fresh connection; resolves { status, headers, body: Buffer } or rejects. */
export function httpGet(url, { timeoutMs = 5000, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${url}`)));
    req.on('error', reject);
  });
}

/**
 * Poll `url` until it answers `wantStatus`, or throw after `timeoutMs`. `isDead()` lets the
 * caller stop waiting at once when the server process has already exited.
 */
export async function waitHttp(url, { timeoutMs = 30_000, wantStatus = 200, intervalMs = 50, isDead } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (isDead?.()) throw new Error(`process exited before ${url} answered (${last})`);
    try {
      const r = await httpGet(url, { timeoutMs: 1000 });
      if (r.status === wantStatus) return r;
      last = `HTTP ${r.status}`;
    } catch (err) {
      last = err.code ?? err.message;
    }
    await sleep(intervalMs);
  }
  throw new Error(`${url} did not answer ${wantStatus} within ${timeoutMs} ms (last: ${last})`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Wall-clock milliseconds with sub-millisecond resolution (comparable across processes). */
export const nowMs = () => performance.timeOrigin + performance.now();
