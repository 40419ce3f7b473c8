/**
 * Host and port doors without a browser (SPEC §10): the Host picks the service (case, port and
 * trailing dot ignored) with the path unchanged; other hosts get the main API; port listeners
 * follow reloads without dropping traffic on other doors; a port that cannot be bound fails the
 * start or the reload; with auth off, a foreign Host gets 421 and a cross-site state-changing
 * control-plane request 403.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { describe, test } from 'node:test';
import { json, send } from '../helpers/client.ts';
import { configFrom, startTestGateway } from '../helpers/gateway.ts';
import { freePort, portOpen } from '../helpers/net.ts';
import { startUpstream } from '../helpers/upstream.ts';

const echoPath = (name: string) =>
  startUpstream((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ name, url: req.url, host: req.headers.host }));
  });

describe('host door', () => {
  test('the Host picks the service (case, port, trailing dot ignored), path unchanged; other hosts get the main API', async (t) => {
    const a = await echoPath('a');
    const b = await echoPath('b');
    t.after(() => Promise.all([a.close(), b.close()]));
    const gw = await startTestGateway({
      server: { service_domain: 'localhost' },
      services: { a: { base_url: a.url, hosts: ['comfy.home.arpa'] }, b: { base_url: b.url } },
    });
    t.after(() => gw.close());
    const viaHost = async (host: string, path: string) => send(gw.url, path, { headers: { host } });

    const r1 = json(await viaHost('Comfy.Home.Arpa.:8080', '/api/x?y=1'));
    assert.deepEqual([r1.name, r1.url], ['a', '/api/x?y=1']);
    const r2 = json(await viaHost(`b.localhost:${gw.port}`, '/'));
    assert.deepEqual([r2.name, r2.url], ['b', '/']);
    // /v1 and /services are the service's too on its host: the whole origin is the app's.
    assert.equal(json(await viaHost('b.localhost', '/v1/services')).name, 'b');
    // Another host on the main port: the main API as before.
    const main = await viaHost(`127.0.0.1:${gw.port}`, '/v1/services');
    assert.equal(main.status, 200);
    assert.ok(Array.isArray(json(main).services));
    assert.equal((await viaHost('localhost', '/services/a/x')).status, 200);
    const status = json(await viaHost('b.localhost', '/.hestia/status'));
    assert.equal(status.serviceId, 'b');
    // The dashboard links each service's doors, as seen from the dashboard's host.
    const ui = await viaHost(`127.0.0.1:${gw.port}`, '/ui');
    assert.match(
      ui.body,
      new RegExp(`<a class="door" href="//comfy\\.home\\.arpa:${gw.port}/">comfy\\.home\\.arpa</a>`),
    );
    assert.match(ui.body, new RegExp(`<a class="door" href="//b\\.localhost:${gw.port}/">b\\.localhost</a>`));
  });
});

describe('port doors', () => {
  test('a port that cannot be bound fails the start, naming service and port', async (t) => {
    const taken = createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    t.after(() => taken.close());
    const port = (taken.address() as { port: number }).port;
    await assert.rejects(
      startTestGateway({ services: { comfy: { base_url: 'http://127.0.0.1:1', listen: port } } }),
      new RegExp(`services\\.comfy\\.listen: cannot listen on 127\\.0\\.0\\.1:${port} for service 'comfy': EADDRINUSE`),
    );
  });

  test('reload adds, removes and moves listeners without dropping in-flight requests on other doors', async (t) => {
    let releaseSlow: () => void = () => {};
    let onSlow: (() => void) | null = null;
    const held = new Promise<void>((r) => {
      releaseSlow = r;
    });
    const a = await startUpstream((req, res) => {
      if (req.url === '/slow') {
        onSlow?.();
        void held.then(() => res.end('slow done'));
        return;
      }
      res.end(`a ${req.url}`);
    });
    const b = await echoPath('b');
    t.after(() => Promise.all([a.close(), b.close()]));
    const [pa, pb, pb2] = [await freePort(), await freePort(), await freePort()];
    const yaml = (bListen: number | null, aListen: number | null) => ({
      services: {
        a: { base_url: a.url, hosts: ['a.localhost'], ...(aListen ? { listen: aListen } : {}) },
        b: { base_url: b.url, ...(bListen ? { listen: bListen } : {}) },
      },
    });
    const gw = await startTestGateway(yaml(pb, null));
    t.after(() => gw.close());
    assert.equal(json(await send(`http://127.0.0.1:${pb}`, '/x')).name, 'b');
    const listening = gw.logs().find((l) => l.event_type === 'port_doors');
    assert.deepEqual(listening?.doors, { b: `http://127.0.0.1:${pb}` });
    const head = await send(`http://127.0.0.1:${pb}`, '/.hestia/status', { method: 'HEAD' });
    assert.deepEqual([head.status, head.body], [200, '']);

    // In flight on the host door and on the port door that is about to move.
    const arrived = new Promise<void>((r) => {
      onSlow = r;
    });
    const slow = send(gw.url, '/slow', { headers: { host: 'a.localhost' } });
    await arrived;

    // Add a's port door, move b's.
    await gw.reload(configFrom(yaml(pb2, pa)));
    assert.equal(await send(`http://127.0.0.1:${pa}`, '/y').then((r) => r.body), 'a /y');
    assert.equal(json(await send(`http://127.0.0.1:${pb2}`, '/z')).name, 'b');
    assert.equal(await portOpen(pb), false, "b's old listener is closed");

    // Remove both.
    await gw.reload(configFrom(yaml(null, null)));
    assert.equal(await portOpen(pa), false);
    assert.equal(await portOpen(pb2), false);

    releaseSlow();
    const done = await slow;
    assert.deepEqual([done.status, done.body], [200, 'slow done'], 'the in-flight request finished');

    // A port that cannot be bound: the reload is refused and the old config stays.
    const taken = createServer();
    taken.listen(0, '127.0.0.1');
    await once(taken, 'listening');
    t.after(() => taken.close());
    const port = (taken.address() as { port: number }).port;
    const before = gw.ctx.config;
    await assert.rejects(gw.reload(configFrom(yaml(port, null))), /services\.b\.listen: cannot listen on .*EADDRINUSE/);
    assert.equal(gw.ctx.config, before);
  });
});

describe('safety with auth off', () => {
  test('a foreign Host → 421 naming the host and the setting; IP literals, localhost, allowed_hosts pass', async (t) => {
    const up = await startUpstream();
    t.after(() => up.close());
    const gw = await startTestGateway({
      server: { allowed_hosts: ['gpu.lan'] },
      services: { x: { base_url: up.url, hosts: ['x.home.arpa'] } },
    });
    t.after(() => gw.close());
    const r = await send(gw.url, '/v1/services', { headers: { host: `evil.example:${gw.port}` } });
    assert.equal(r.status, 421);
    const body = json(r);
    assert.equal(body.code, 'HESTIA_MISDIRECTED');
    assert.match(String(body.error), /evil\.example.*server\.allowed_hosts/);
    assert.equal((await send(gw.url, '/services/x/', { headers: { host: 'evil.example' } })).status, 421);
    for (const host of ['gpu.lan:8080', 'localhost', 'a.localhost', '192.168.1.10:8080', '[::1]:80', 'x.home.arpa'])
      assert.notEqual((await send(gw.url, '/healthz', { headers: { host } })).status, 421, host);
  });

  test('a cross-site POST to /v1/services/x/stop → 403; a same-origin one → 202', async (t) => {
    const up = await startUpstream();
    t.after(() => up.close());
    const gw = await startTestGateway({ services: { x: { base_url: up.url } } });
    t.after(() => gw.close());
    const origin = gw.url;
    await send(gw.url, '/services/x/'); // hot
    const host = new URL(gw.url).host;
    const cross = await send(gw.url, '/v1/services/x/stop', {
      method: 'POST',
      headers: { host, origin: 'http://evil.example', 'sec-fetch-site': 'cross-site' },
    });
    assert.equal(cross.status, 403);
    const foreignOrigin = await send(gw.url, '/v1/services/x/stop', {
      method: 'POST',
      headers: { host, origin: 'http://evil.example' },
    });
    assert.equal(foreignOrigin.status, 403);
    const same = await send(gw.url, '/v1/services/x/stop', {
      method: 'POST',
      headers: { host, origin, 'sec-fetch-site': 'same-origin' },
    });
    assert.equal(same.status, 202);
  });
});
