import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { silentLogger } from '../../src/observability/logger.ts';
import { routeRequest } from '../../src/routing/route-request.ts';
import { RoutingTable } from '../../src/routing/router.ts';
import { configFrom } from '../helpers/gateway.ts';

// With real sockets: a client POSTs to a stand-in for the proxy seam, which routes with
// routeRequest on the real IncomingMessage and forwards `routed.body` to the chosen upstream.
// The upstreams answer with who they are and the SHA-256 of the bytes they received.
const upstreams: Server[] = [];
let seam: Server;
let urls: { a: string; b: string; base: string };
let seamUrl: string;

const listen = (s: Server) =>
  new Promise<string>((resolve) =>
    s.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)),
  );

const upstream = (name: string) =>
  createServer(async (req: IncomingMessage, res) => {
    const hash = createHash('sha256');
    let n = 0;
    for await (const c of req) {
      hash.update(c as Buffer);
      n += (c as Buffer).length;
    }
    res.setHeader('content-type', 'application/json');
    res.end(
      JSON.stringify({ name, bytes: n, sha256: hash.digest('hex'), contentLength: req.headers['content-length'] }),
    );
  });

before(async () => {
  const [a, b, base] = [upstream('a'), upstream('b'), upstream('base')];
  upstreams.push(a, b, base);
  urls = { a: await listen(a), b: await listen(b), base: await listen(base) };
  const config = configFrom({
    services: {
      m: {
        base_url: urls.base,
        strategy: 'model_router',
        routing: { by_model: { llama3: urls.a, mistral: urls.b }, body_cap_bytes: 64 * 1024 },
      },
    },
  });
  const t = new RoutingTable({ getConfig: () => config, log: silentLogger() });
  seam = createServer(async (req, res) => {
    // Any failure answers 500 at once, so a broken assertion fails the test instead of hanging it.
    try {
      const routed = await routeRequest(t, 'm', urls.base, {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: req.headers,
        body: req,
      });
      const up = await request(`${routed?.url ?? urls.base}${req.url}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': req.headers['content-length'] },
        body: routed?.body ?? req,
      });
      res.end(await up.body.text());
    } catch (err) {
      res.statusCode = 500;
      res.end(JSON.stringify({ name: 'seam-error', error: String(err) }));
    }
  });
  seamUrl = await listen(seam);
});
after(async () => {
  for (const s of [seam, ...upstreams]) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

const post = async (body: Buffer) => {
  const res = await request(`${seamUrl}/api/generate`, { method: 'POST', body });
  return (await res.body.json()) as { name: string; bytes: number; sha256: string; contentLength: string };
};
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

test('real sockets: the model in the body picks the upstream, which receives the identical bytes', async () => {
  const body = Buffer.from('{ "model" : "mistral",\n  "prompt": "h\\u00e9llo",  "n": 1.50 }');
  const got = await post(body);
  assert.deepEqual(got, { name: 'b', bytes: body.length, sha256: sha(body), contentLength: String(body.length) });
});

test('real sockets: a body over the cap streams through intact to base_url (prefix replayed, then the rest)', async () => {
  const pad = 'x'.repeat(3 * 1024 * 1024);
  const body = Buffer.from(`{"model":"llama3","pad":"${pad}"}`);
  const got = await post(body);
  assert.deepEqual(got, { name: 'base', bytes: body.length, sha256: sha(body), contentLength: String(body.length) });
});

test('real sockets: a body that is not JSON goes to base_url intact', async () => {
  const body = Buffer.from('model=llama3&prompt=hi');
  const got = await post(body);
  assert.equal(got.name, 'base');
  assert.equal(got.sha256, sha(body));
});

test('real sockets: a chunked body (no Content-Length) is read and routed too', async () => {
  const body = '{"model":"llama3"}';
  const res = await request(`${seamUrl}/api/generate`, {
    method: 'POST',
    body: Readable.from([Buffer.from(body.slice(0, 7)), Buffer.from(body.slice(7))]),
  });
  const got = (await res.body.json()) as { name: string; sha256: string };
  assert.equal(got.name, 'a');
  assert.equal(got.sha256, sha(Buffer.from(body)));
});
