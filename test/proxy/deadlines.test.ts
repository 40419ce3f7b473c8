/**
 * The proxy's own upstream timeouts (src/proxy/deadlines.ts): one sweeping timer instead of a
 * timer per request. What must hold: a timeout fires once, time in the connection pool does
 * not count, our own backpressure does not count, every body chunk restarts the body timeout,
 * and nothing stays tracked (or ticking) once the traffic ends.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type IncomingMessage, request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Deadlines, type Timed } from '../../src/proxy/deadlines.ts';
import { json, send } from '../helpers/client.ts';
import { type ControlledService, type ProxyGateway, startProxyGateway } from '../helpers/service-doubles.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';

describe('Deadlines', () => {
  test('fires a passed deadline once, keeps the others, and stops ticking when nothing is tracked', async () => {
    const d = new Deadlines();
    let fired = 0;
    const fast: Timed = { deadline: 0, onDeadline: () => fired++, prevTimed: null, nextTimed: null };
    let slowFired = 0;
    const slow: Timed = { deadline: 0, onDeadline: () => slowFired++, prevTimed: null, nextTimed: null };
    d.track(fast, 30);
    d.track(slow, 60_000);
    assert.equal(d.size, 2);
    assert.ok(d.running);
    while (fired === 0) await delay(5);
    await delay(40); // a few more sweeps: it must not fire again
    assert.equal(fired, 1);
    assert.equal(slowFired, 0);
    assert.equal(fast.deadline, 0);
    assert.equal(d.size, 1);
    assert.ok(d.running, 'still ticking for the slow one');
    d.untrack(slow);
    d.sweep();
    assert.equal(d.size, 0);
    assert.equal(d.running, false, 'no timer once nothing is tracked');
  });

  test('untracking from the middle, the head and the tail keeps the others tracked', async () => {
    const d = new Deadlines();
    const fired: string[] = [];
    const mk = (name: string): Timed => ({
      deadline: 0,
      onDeadline: () => fired.push(name),
      prevTimed: null,
      nextTimed: null,
    });
    const [a, b, c, e] = [mk('a'), mk('b'), mk('c'), mk('e')];
    for (const t of [a, b, c, e]) d.track(t, 20);
    d.untrack(b); // middle
    d.untrack(e); // head (the last tracked)
    d.untrack(b); // twice: no effect
    assert.equal(d.size, 2);
    while (fired.length < 2) await delay(5);
    assert.deepEqual(fired.sort(), ['a', 'c']);
    assert.equal(d.size, 0);
    assert.equal(d.running, false);
  });

  test('an onDeadline that ends another tracked request does not fire that one', async () => {
    const d = new Deadlines();
    const fired: string[] = [];
    const second: Timed = { deadline: 0, onDeadline: () => fired.push('second'), prevTimed: null, nextTimed: null };
    const first: Timed = {
      deadline: 0,
      onDeadline: () => {
        fired.push('first');
        d.untrack(second); // e.g. the abort ended the other request too
      },
      prevTimed: null,
      nextTimed: null,
    };
    d.track(second, 20);
    d.track(first, 20); // the head: swept first
    // Due at the same instant, so one sweep finds both (two track calls a moment apart could
    // straddle a sweep on a busy machine, and the second would then fire on its own first).
    first.deadline = second.deadline;
    while (fired.length === 0) await delay(5);
    await delay(60);
    assert.deepEqual(fired, ['first']);
    assert.equal(d.size, 0);
    assert.equal(d.running, false);
  });

  test('moving a deadline (track again) keeps one entry and postpones it', async () => {
    const d = new Deadlines();
    let fired = 0;
    const t: Timed = { deadline: 0, onDeadline: () => fired++, prevTimed: null, nextTimed: null };
    d.track(t, 40);
    for (let i = 0; i < 5; i++) {
      await delay(20);
      d.track(t, 40); // progress before the deadline
    }
    assert.equal(fired, 0);
    assert.equal(d.size, 1);
    while (fired === 0) await delay(5);
    assert.equal(d.size, 0);
    d.stop();
  });
});

describe('upstream timeouts through the proxy', () => {
  let gw: ProxyGateway & { handles: Map<string, import('../../src/services/types.ts').ServiceHandle> };
  let slowHead: Upstream;
  let big: Upstream;
  let trickle: Upstream;
  const BIG = 8 * 1024 * 1024;

  before(async () => {
    // Each answer takes 150 ms to start: with one connection, the third of three concurrent
    // requests waits ~300 ms in the pool, longer than the 250 ms headers timeout.
    slowHead = await startUpstream((_req, res) => {
      setTimeout(() => res.end('late but fine'), 150);
    });
    // 8 MiB at once: a client that does not read makes the gateway pause the upstream.
    big = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-length': String(BIG) });
      res.end(Buffer.alloc(BIG, 'x'));
    });
    // Six chunks 80 ms apart: 400 ms in all, each gap under the 200 ms body timeout.
    trickle = await startUpstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      let n = 0;
      const t = setInterval(() => {
        res.write(`chunk ${n}\n`);
        if (++n === 6) {
          clearInterval(t);
          res.end();
        }
      }, 80);
    });
    gw = await startProxyGateway({
      pooled: { base_url: slowHead.url, upstream_max_connections: 1, upstream_headers_timeout_ms: 250 },
      big: { base_url: big.url, upstream_body_timeout_ms: 200 },
      trickle: { base_url: trickle.url, upstream_body_timeout_ms: 200 },
    });
    for (const h of gw.handles.values()) (h as ControlledService).state = 'hot';
  });

  after(async () => {
    await gw.close();
    await Promise.all([slowHead.close(), big.close(), trickle.close()]);
  });

  test('time spent waiting for a pooled connection does not count against the headers timeout', async () => {
    const rs = await Promise.all([1, 2, 3].map(() => send(gw.url, '/services/pooled/')));
    assert.deepEqual(
      rs.map((r) => r.status),
      [200, 200, 200],
      rs.map((r) => r.body.toString()).join(' | '),
    );
  });

  test('a client that reads slowly (our backpressure) does not trip the body timeout', async () => {
    const u = new URL(gw.url);
    const req = request({ host: u.hostname, port: u.port, path: '/services/big/', agent: false });
    req.end();
    const [res] = (await once(req, 'response')) as [IncomingMessage];
    assert.equal(res.statusCode, 200);
    res.pause();
    await delay(600); // three body timeouts without reading a byte
    let got = 0;
    res.on('data', (c: Buffer) => {
      got += c.length;
    });
    res.resume();
    await once(res, 'end');
    assert.equal(got, BIG);
  });

  test('every body chunk restarts the body timeout: a slow but steady body completes', async () => {
    const r = await send(gw.url, '/services/trickle/');
    assert.equal(r.status, 200);
    assert.equal(r.body.toString().split('\n').filter(Boolean).length, 6);
  });

  test('a headers timeout still answers 504, and nothing stays tracked afterwards', async () => {
    const silent = await startUpstream(() => {
      /* never answers */
    });
    const g2 = await startProxyGateway({ silent: { base_url: silent.url, upstream_headers_timeout_ms: 100 } });
    (g2.handles.get('silent') as ControlledService).state = 'hot';
    try {
      const r = await send(g2.url, '/services/silent/');
      assert.equal(r.status, 504);
      assert.equal(json(r).code, 'HESTIA_UPSTREAM_TIMEOUT');
      assert.equal(g2.proxy.timedRequests(), 0);
    } finally {
      await g2.close();
      await silent.close();
    }
  });

  test('after all of the above, no request is left with a running deadline', () => {
    assert.equal(gw.proxy.timedRequests(), 0);
  });
});
