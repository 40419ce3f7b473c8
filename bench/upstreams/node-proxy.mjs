#!/usr/bin/env node
/**
 * The floor for a Node.js gateway: the smallest correct reverse proxy on node:http + undici's
 * `dispatch` (Hestia's own stack) — a keep-alive pool per upstream, X-Forwarded-*, an
 * X-Request-ID echoed back, bodies streamed both ways with backpressure.
 * No routing table, no auth, no metrics, no logging. The `nodeproxy` leg of the benchmark.
 *
 *   node bench/upstreams/node-proxy.mjs --port P --bench http://127.0.0.1:U --stream http://127.0.0.1:N
 *
 * `/services/bench/<rest>` goes to --bench, `/services/stream/<rest>` to --stream. Exits when
 * stdin closes (the orchestrator died).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values } = parseArgs({
  options: { port: { type: 'string' }, bench: { type: 'string' }, stream: { type: 'string' } },
});
// One undici pool per upstream with Hestia's defaults (128 connections, undici's timeouts off).
const pool = (origin) => new Pool(origin, { connections: 128, headersTimeout: 0, bodyTimeout: 0 });
const pools = { bench: pool(values.bench), stream: pool(values.stream) };
const HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'host',
]);

const server = http.createServer((req, res) => {
  const m = /^\/services\/(bench|stream)(\/.*)?$/.exec(req.url);
  if (!m) return void res.writeHead(404).end();
  const id = randomUUID();
  const headers = {};
  for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v;
  headers['x-forwarded-for'] = req.socket.remoteAddress;
  headers['x-forwarded-host'] = req.headers.host ?? '';
  headers['x-forwarded-proto'] = 'http';
  headers['x-request-id'] = id;
  const hasBody = req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
  // A client that leaves aborts its upstream request, also one still queued in the pool.
  let abort = null;
  let gone = false;
  res.on('close', () => {
    if (res.writableFinished) return;
    gone = true;
    abort?.(new Error('client closed'));
  });
  // The undici dispatch handler (legacy interface, as Hestia's exchange): backpressure by
  // returning false from onData and calling `resume` on the client's 'drain'.
  pools[m[1]].dispatch(
    { method: req.method, path: m[2] ?? '/', headers, body: hasBody ? req : null },
    {
      onConnect(a) {
        abort = a;
        if (gone) a(new Error('client closed'));
      },
      onHeaders(status, raw, resume) {
        const out = [];
        for (let i = 0; i < raw.length; i += 2) {
          const k = raw[i].toString('latin1');
          if (!HOP.has(k.toLowerCase())) out.push(k, raw[i + 1].toString('latin1'));
        }
        out.push('x-request-id', id);
        res.writeHead(status, out);
        res.on('drain', resume);
        return true;
      },
      onData: (chunk) => res.write(chunk),
      onComplete: () => res.end(),
      onError: () => (res.headersSent ? res.destroy() : res.writeHead(502).end()),
    },
  );
});
server.keepAliveTimeout = 300_000;
server.listen(Number(values.port), '127.0.0.1');
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
