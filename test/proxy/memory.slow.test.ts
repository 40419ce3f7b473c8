/**
 * Flat memory (SPEC §4): 256 MiB up and 256 MiB down through a gateway running as its own
 * process (`node bin/hestia.mjs serve`), whose RSS is read from /proc while the bytes flow.
 * Bodies are generated streams on both ends, never buffers, so only the gateway could hold
 * them.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

const MiB = 1024 * 1024;
const TOTAL = 256 * MiB;
const LIMIT = 64 * MiB;
const CHUNK = Buffer.alloc(64 * 1024, 0x61);

/** A stream of `total` bytes, generated as it is read. */
function generated(total: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(CHUNK.length, total - sent);
      sent += n;
      this.push(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
    },
  });
}

/**
 * Make a reader slower than the writer, so the gateway sits between a fast producer and a slow
 * consumer in both directions: without backpressure it would have to buffer the difference.
 * (A rate limit, not synchronisation: nothing waits on it.)
 */
function throttle(stream: Readable): void {
  stream.pause();
  setTimeout(() => stream.resume(), 1);
}

let up: Upstream;
let child: ChildProcess;
let gatewayUrl = '';
let dir = '';

before(async () => {
  up = await startUpstream((req, res) => {
    if (req.method === 'PUT') {
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        bytes += c.length;
        throttle(req);
      });
      req.on('end', () => res.end(JSON.stringify({ bytes })));
      return;
    }
    const total = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('bytes'));
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
    generated(total).pipe(res);
  });
  dir = mkdtempSync(join(tmpdir(), 'hestia-mem-'));
  const configPath = join(dir, 'hestia_config.yml');
  writeFileSync(configPath, `services:\n  big:\n    base_url: ${up.url}\n`);
  child = spawn(process.execPath, ['bin/hestia.mjs', 'serve', '--config', configPath], {
    env: { ...process.env, HESTIA_HOST: '127.0.0.1', HESTIA_PORT: '0', HESTIA_DB_PATH: join(dir, 'hestia.db') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  // The port is chosen by the OS: read it from the 'listening' log line.
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    const entry = JSON.parse(line) as { event_type?: string; url?: string };
    if (entry.event_type === 'listening' && entry.url) {
      gatewayUrl = entry.url;
      break;
    }
  }
  // Keep draining the gateway's log so its stdout never blocks.
  child.stdout!.resume();
  assert.ok(gatewayUrl, 'the gateway did not report its address');
});

after(async () => {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  }
  await up.close();
  rmSync(dir, { recursive: true, force: true });
});

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

function upload(bytes: number): Promise<number> {
  const u = new URL(gatewayUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method: 'PUT', path: '/services/big/upload' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        text += c;
      });
      res.on('end', () => resolve((JSON.parse(text) as { bytes: number }).bytes));
      res.on('error', reject);
    });
    req.on('error', reject);
    generated(bytes).pipe(req);
  });
}

function download(bytes: number): Promise<number> {
  const u = new URL(gatewayUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: `/services/big/download?bytes=${bytes}` }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        throttle(res);
      });
      res.on('end', () => resolve(n));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('256 MiB each way through the gateway, to slow readers, grows its RSS by less than 64 MiB', async (t) => {
  const pid = child.pid!;
  // Warm up (JIT, pools, buffers) so the baseline is the gateway at work, not at rest.
  assert.equal(await upload(16 * MiB), 16 * MiB);
  assert.equal(await download(16 * MiB), 16 * MiB);
  const baseline = rssBytes(pid);
  let peak = baseline;
  // Sampling, not synchronisation: the transfers below are awaited on their own events.
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssBytes(pid));
  }, 25);
  try {
    const [up256, down256] = await Promise.all([upload(TOTAL), download(TOTAL)]);
    assert.equal(up256, TOTAL);
    assert.equal(down256, TOTAL);
  } finally {
    clearInterval(sampler);
  }
  peak = Math.max(peak, rssBytes(pid));
  const growth = peak - baseline;
  t.diagnostic(
    `gateway RSS growth ${(growth / MiB).toFixed(1)} MiB over a ${(baseline / MiB).toFixed(1)} MiB baseline`,
  );
  assert.ok(
    growth < LIMIT,
    `RSS grew by ${(growth / MiB).toFixed(1)} MiB (baseline ${(baseline / MiB).toFixed(1)} MiB)`,
  );
});
