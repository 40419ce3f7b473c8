import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type IncomingMessage, request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { HestiaEvent } from '../../src/observability/events.ts';
import { json, send } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { refusedPort } from '../helpers/net.ts';
import {
  echoHandler,
  onRequestHead,
  type RawUpstream,
  type Received,
  startRawUpstream,
  startUpstream,
  type Upstream,
} from '../helpers/upstream.ts';

/** A raw upstream that counts request heads and resets each connection after reading one. */
async function resettingUpstream(): Promise<RawUpstream & { heads: () => number }> {
  let heads = 0;
  const raw = await startRawUpstream((socket) =>
    onRequestHead(socket, () => {
      heads++;
      socket.resetAndDestroy();
    }),
  );
  return Object.assign(raw, { heads: () => heads });
}

let gw: TestGateway;
let fallback: Upstream;
let primaryWithFallback: Awaited<ReturnType<typeof resettingUpstream>>;
let primaryAlone: Awaited<ReturnType<typeof resettingUpstream>>;
let bodyReset: RawUpstream;
let bodyResetHeads = 0;
let flaky: RawUpstream;
let flakyMode: 'reset' | 'ok' = 'reset';
let malformed: RawUpstream;
let partialHead: RawUpstream;
let partialBody: RawUpstream;
let silent: RawUpstream;
let stalling: RawUpstream;
let streaming: Upstream;
let streamClosed: Promise<void> | undefined;
let refused: number;
const events: HestiaEvent[] = [];
const activeTimeoutsAtStart = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

before(async () => {
  fallback = await startUpstream(echoHandler);
  primaryWithFallback = await resettingUpstream();
  primaryAlone = await resettingUpstream();
  bodyReset = await startRawUpstream((socket) => {
    let seen = 0;
    socket.on('data', (c: Buffer) => {
      seen += c.length;
      // Head plus a good part of the body: the body has started streaming upstream.
      if (seen > 64 * 1024 && !socket.destroyed) {
        bodyResetHeads++;
        socket.resetAndDestroy();
      }
    });
  });
  flaky = await startRawUpstream((socket) =>
    onRequestHead(socket, () => {
      if (flakyMode === 'reset') socket.destroy();
      else socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok');
    }),
  );
  malformed = await startRawUpstream((socket) => onRequestHead(socket, () => socket.end('garbage\r\n\r\n')));
  partialHead = await startRawUpstream((socket) =>
    onRequestHead(socket, () => socket.end('HTTP/1.1 200 OK\r\nContent-Le')),
  );
  partialBody = await startRawUpstream((socket) =>
    onRequestHead(socket, () => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')),
  );
  // Reads (so it sees the gateway hang up) but never answers.
  silent = await startRawUpstream((socket) => socket.resume());
  stalling = await startRawUpstream((socket) =>
    onRequestHead(socket, () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc')),
  );
  streaming = await startUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write('{"token":1}\n');
    streamClosed = new Promise((resolve) => res.on('close', resolve));
  });
  refused = await refusedPort();

  gw = await startTestGateway({
    services: {
      'retry-fallback': {
        base_url: primaryWithFallback.url,
        retry_count: 3,
        retry_delay_ms: 5,
        fallback_url: fallback.url,
      },
      'retry-fail': { base_url: primaryAlone.url, retry_count: 3, retry_delay_ms: 5 },
      'refused-fallback': { base_url: `http://127.0.0.1:${refused}`, retry_count: 2, fallback_url: fallback.url },
      'refused-zero': { base_url: `http://127.0.0.1:${refused}`, retry_count: 0 },
      'refused-slow-retry': { base_url: `http://127.0.0.1:${refused}`, retry_count: 2, retry_delay_ms: 60_000 },
      'body-reset': { base_url: bodyReset.url, retry_count: 3, fallback_url: fallback.url },
      flaky: { base_url: flaky.url },
      malformed: { base_url: malformed.url, retry_count: 3 },
      'partial-head': { base_url: partialHead.url },
      'partial-body': { base_url: partialBody.url },
      silent: { base_url: silent.url, upstream_headers_timeout_ms: 150 },
      stalling: { base_url: stalling.url, upstream_body_timeout_ms: 150 },
      streaming: { base_url: streaming.url },
      dns: { base_url: 'http://hestia-test.invalid:9' },
    },
  });
  gw.ctx.bus.on('event', (e) => events.push(e));
});

after(async () => {
  await gw.close();
  for (const u of [fallback, streaming]) await u.close();
  for (const u of [
    primaryWithFallback,
    primaryAlone,
    bodyReset,
    flaky,
    malformed,
    partialHead,
    partialBody,
    silent,
    stalling,
  ]) {
    await u.close();
  }
});

function eventsOf(type: string, requestId: string): HestiaEvent[] {
  return events.filter((e) => e.type === type && e.details.requestId === requestId);
}

describe('connection failures: retry, fallback, 502', () => {
  test('retries up to retry_count attempts, then the fallback answers', async () => {
    const r = await send(gw.url, '/services/retry-fallback/x?y=1', { headers: { 'X-Request-ID': 'rf-1' } });
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as Received).url, '/x?y=1');
    assert.equal(primaryWithFallback.heads(), 3, 'the primary saw exactly retry_count attempts');
    assert.equal(eventsOf('proxy_retry', 'rf-1').length, 2);
    assert.equal(eventsOf('proxy_fallback', 'rf-1').length, 1);
  });

  test('without a fallback: retry_count attempts, then 502 HESTIA_UPSTREAM_UNREACHABLE with details', async () => {
    const r = await send(gw.url, '/services/retry-fail/x', { headers: { 'X-Request-ID': 'rf-2' } });
    assert.equal(r.status, 502);
    const body = json(r);
    assert.equal(body.code, 'HESTIA_UPSTREAM_UNREACHABLE');
    assert.equal(body.src, 'hestia');
    assert.equal(body.serviceId, 'retry-fail');
    assert.equal(body.attempts, 3);
    assert.equal(primaryAlone.heads(), 3);
    assert.equal(eventsOf('proxy_error', 'rf-2').length, 1);
  });

  test('a refused port is retried, then the fallback gets the request body intact', async () => {
    const payload = randomBytes(200_000);
    const r = await send(gw.url, '/services/refused-fallback/upload', {
      method: 'POST',
      body: payload,
      headers: { 'X-Request-ID': 'rf-3' },
    });
    assert.equal(r.status, 200);
    const got = JSON.parse(r.body) as Received;
    assert.equal(got.bodyLength, payload.length);
    assert.equal(got.bodySha256, createHash('sha256').update(payload).digest('hex'));
    assert.equal(eventsOf('proxy_retry', 'rf-3').length, 1);
    assert.equal(eventsOf('proxy_fallback', 'rf-3').length, 1);
  });

  test('retry_count 0 means one attempt', async () => {
    const r = await send(gw.url, '/services/refused-zero/', { headers: { 'X-Request-ID': 'rf-4' } });
    assert.equal(r.status, 502);
    assert.equal(json(r).attempts, 1);
    assert.equal(json(r).cause, 'ECONNREFUSED');
  });

  test('a DNS failure is a 502 unreachable', async () => {
    const r = await send(gw.url, '/services/dns/');
    assert.equal(r.status, 502);
    assert.equal(json(r).code, 'HESTIA_UPSTREAM_UNREACHABLE');
  });

  test('a body that already streamed upstream is never replayed (no retry, no fallback)', async () => {
    const payload = randomBytes(4 * 1024 * 1024);
    const before = fallback.requests.length;
    const r = await send(gw.url, '/services/body-reset/upload', { method: 'POST', body: payload });
    assert.equal(r.status, 502);
    assert.equal(json(r).attempts, 1);
    assert.equal(bodyResetHeads, 1);
    assert.equal(fallback.requests.length, before);
  });

  test('a client that leaves during the retry delay cancels the retry', async () => {
    const seenRetry = new Promise<void>((resolve) => {
      gw.ctx.bus.on('event', (e) => {
        if (e.type === 'proxy_retry' && e.serviceId === 'refused-slow-retry') resolve();
      });
    });
    const u = new URL(gw.url);
    const req = request({ host: u.hostname, port: u.port, path: '/services/refused-slow-retry/', agent: false });
    req.on('error', () => {});
    req.end();
    await seenRetry;
    const closed = new Promise((resolve) => req.on('close', resolve));
    req.destroy();
    await closed;
    // The 60 s retry timer must be gone: checked by the "no timers left" test at the end.
  });
});

describe('broken upstreams', () => {
  test('an upstream that resets the connection → 502, and the gateway keeps serving', async () => {
    flakyMode = 'reset';
    const r = await send(gw.url, '/services/flaky/a');
    assert.equal(r.status, 502);
    assert.equal(json(r).code, 'HESTIA_UPSTREAM_UNREACHABLE');
    flakyMode = 'ok';
    const ok = await send(gw.url, '/services/flaky/b');
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'ok');
  });

  test('a malformed response → 502 HESTIA_UPSTREAM_ERROR, not retried', async () => {
    const r = await send(gw.url, '/services/malformed/');
    assert.equal(r.status, 502);
    assert.equal(json(r).code, 'HESTIA_UPSTREAM_ERROR');
    assert.equal(json(r).attempts, 1);
    assert.equal((await send(gw.url, '/healthz')).status, 200);
  });

  test('a response cut inside its headers → 502', async () => {
    const r = await send(gw.url, '/services/partial-head/');
    assert.equal(r.status, 502);
    assert.equal(json(r).src, 'hestia');
  });

  test('a response cut inside its body → the client connection is cut (never a silent short body)', async () => {
    await assert.rejects(send(gw.url, '/services/partial-body/'), /aborted|ECONNRESET|socket hang up/);
    assert.equal((await send(gw.url, '/healthz')).status, 200);
  });

  test('no response headers within upstream_headers_timeout_ms → 504 HESTIA_UPSTREAM_TIMEOUT', async () => {
    const r = await send(gw.url, '/services/silent/');
    assert.equal(r.status, 504);
    assert.equal(json(r).code, 'HESTIA_UPSTREAM_TIMEOUT');
  });

  test('a body that stalls past upstream_body_timeout_ms cuts the client connection', async () => {
    await assert.rejects(send(gw.url, '/services/stalling/'), /aborted|ECONNRESET|socket hang up/);
  });
});

describe('client disconnects', () => {
  test('a client that disconnects mid-stream aborts the upstream request within a second', async () => {
    const u = new URL(gw.url);
    const req = request({ host: u.hostname, port: u.port, path: '/services/streaming/generate', agent: false });
    req.on('error', () => {});
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    await once(res, 'data');
    assert.ok(streamClosed, 'the upstream saw the request');
    req.destroy();
    const ac = new AbortController();
    const deadline = delay(1000, 'timeout', { signal: ac.signal }).catch(() => 'cancelled');
    const outcome = await Promise.race([streamClosed.then(() => 'closed'), deadline]);
    ac.abort();
    assert.equal(outcome, 'closed', 'the upstream request was not aborted within 1 s');
  });
});

describe('nothing leaks', () => {
  test('after the gateway closes: every upstream connection is closed and no timer is left', async () => {
    await gw.close();
    const all = {
      fallback,
      streaming,
      primaryWithFallback,
      primaryAlone,
      bodyReset,
      flaky,
      malformed,
      partialHead,
      partialBody,
      silent,
      stalling,
    };
    for (const [name, u] of Object.entries(all)) {
      await u.waitForConnections(0);
      assert.equal(u.connections(), 0, name);
    }
    const timeouts = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    assert.ok(timeouts <= activeTimeoutsAtStart, `timers left: ${timeouts} (at start: ${activeTimeoutsAtStart})`);
  });
});
