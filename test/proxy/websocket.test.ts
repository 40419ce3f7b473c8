import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import type { ServiceHandle } from '../../src/services/types.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { refusedPort } from '../helpers/net.ts';
import { type ControlledService, type ProxyGateway, startProxyGateway } from '../helpers/service-doubles.ts';
import { type RawUpstream, startRawUpstream, startUpstream, type Upstream } from '../helpers/upstream.ts';

let echo: Upstream;
let wss: WebSocketServer;
/** Server-side sockets of the echo upstream, newest last, with the upgrade request that made them. */
const upstreamSockets: Array<{ ws: WebSocket; req: IncomingMessage }> = [];
let refusing: Upstream;
let silent: RawUpstream;
let gw: ProxyGateway & { handles: Map<string, ServiceHandle> };

function svc(id: string): ControlledService {
  return gw.handles.get(id) as ControlledService;
}

before(async () => {
  echo = await startUpstream((_req, res) => res.end('plain http'));
  wss = new WebSocketServer({ server: echo.server });
  wss.on('connection', (ws, req) => {
    upstreamSockets.push({ ws, req });
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  refusing = await startUpstream((_req, res) => res.end());
  refusing.server.on('upgrade', (_req, socket) => {
    socket.end(
      'HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nX-Why: policy\r\n\r\nnope!\n',
    );
  });
  const refused = await refusedPort();
  silent = await startRawUpstream((socket) => socket.resume());
  gw = await startProxyGateway({
    ws: { base_url: echo.url },
    'ws-keep': { base_url: `${echo.url}/base`, websocket_keeps_alive: true },
    'ws-cold': { base_url: echo.url },
    'ws-refuse': { base_url: refusing.url },
    'ws-down': { base_url: `http://127.0.0.1:${refused}` },
    'ws-silent': { base_url: silent.url, upstream_headers_timeout_ms: 100 },
  });
  for (const id of ['ws', 'ws-keep', 'ws-refuse', 'ws-down', 'ws-silent']) svc(id).state = 'hot';
});

after(async () => {
  await gw.close();
  wss.close();
  await echo.close();
  await refusing.close();
  await silent.close();
});

function wsUrl(path: string): string {
  return `ws://127.0.0.1:${gw.port}${path}`;
}

/** Open a client and resolve with it and the 101 response once open. */
async function connect(path: string, headers: Record<string, string> = {}) {
  const ws = new WebSocket(wsUrl(path), { headers });
  // 'open' follows 'upgrade' in the same tick: listen for both before awaiting either.
  const upgraded = once(ws, 'upgrade');
  const opened = once(ws, 'open');
  const [upgradeRes] = (await upgraded) as [IncomingMessage];
  await opened;
  return { ws, upgradeRes };
}

/** Resolve with the status and body of a refused upgrade. */
async function refusedUpgrade(
  path: string,
): Promise<{ status: number; body: string; headers: IncomingMessage['headers'] }> {
  const ws = new WebSocket(wsUrl(path));
  ws.on('error', () => {});
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage];
  let body = '';
  res.setEncoding('utf8');
  for await (const c of res) body += c;
  ws.terminate();
  return { status: res.statusCode ?? 0, body, headers: res.headers };
}

async function roundTrip(ws: WebSocket, msg: string): Promise<string> {
  ws.send(msg);
  const [data] = (await once(ws, 'message')) as [Buffer];
  return data.toString();
}

describe('tunnel', () => {
  test('messages echo through the proxy; path, query and forwarding headers reach the upstream', async () => {
    const before = upstreamSockets.length;
    const { ws, upgradeRes } = await connect('/services/ws/chat?room=a%2Fb', { 'X-Request-ID': 'ws-1' });
    assert.equal(upgradeRes.statusCode, 101);
    assert.equal(upgradeRes.headers['x-request-id'], 'ws-1');
    assert.equal(await roundTrip(ws, 'hello'), 'hello');
    ws.send(Buffer.from([0, 1, 2, 255]));
    const [bin] = (await once(ws, 'message')) as [Buffer];
    assert.deepEqual([...bin], [0, 1, 2, 255]);
    const { req } = upstreamSockets[before]!;
    assert.equal(req.url, '/chat?room=a%2Fb');
    assert.equal(req.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(req.headers['x-request-id'], 'ws-1');
    assert.equal(req.headers.host, `127.0.0.1:${echo.port}`);
    ws.close();
    await once(ws, 'close');
  });

  test('closing the client closes the upstream side', async () => {
    const before = upstreamSockets.length;
    const { ws } = await connect('/services/ws/');
    const upstream = upstreamSockets[before]!.ws;
    const upClosed = once(upstream, 'close');
    ws.close(1000, 'bye');
    const [code] = (await upClosed) as [number];
    assert.equal(code, 1000);
  });

  test('closing the upstream closes the client, and so does an upstream that just drops the socket', async () => {
    let before = upstreamSockets.length;
    const a = await connect('/services/ws/');
    upstreamSockets[before]!.ws.close(4001, 'server done');
    const [codeA] = (await once(a.ws, 'close')) as [number];
    assert.equal(codeA, 4001);

    before = upstreamSockets.length;
    const b = await connect('/services/ws/');
    upstreamSockets[before]!.ws.terminate();
    const [codeB] = (await once(b.ws, 'close')) as [number];
    assert.equal(codeB, 1006);
  });

  test('an upgrade the upstream refuses is relayed with its status and body, then closed', async () => {
    const r = await refusedUpgrade('/services/ws-refuse/socket');
    assert.equal(r.status, 403);
    assert.equal(r.body, 'nope!\n');
    assert.equal(r.headers['x-why'], 'policy');
    assert.equal(svc('ws-refuse').leasesHeld, 0);
  });

  test('unknown service, a path outside /services, an unreachable or silent upstream, a climbing path: refused in the Hestia envelope', async () => {
    const unknown = await refusedUpgrade('/services/nope/socket');
    assert.equal(unknown.status, 404);
    assert.equal((JSON.parse(unknown.body) as Record<string, unknown>).code, 'HESTIA_UNKNOWN_SERVICE');
    const outside = await refusedUpgrade('/v1/socket');
    assert.equal(outside.status, 404);
    const down = await refusedUpgrade('/services/ws-down/socket');
    assert.equal(down.status, 502);
    assert.equal((JSON.parse(down.body) as Record<string, unknown>).code, 'HESTIA_UPSTREAM_UNREACHABLE');
    const silentUp = await refusedUpgrade('/services/ws-silent/');
    assert.equal(silentUp.status, 504);
    assert.equal((JSON.parse(silentUp.body) as Record<string, unknown>).code, 'HESTIA_UPSTREAM_TIMEOUT');
    const climbing = await refusedUpgrade('/services/ws/..%2f..%2fx');
    assert.equal(climbing.status, 400);
  });
});

describe('activity and leases', () => {
  test('without websocket_keeps_alive: the lease is released after the handshake and messages touch()', async () => {
    const s = svc('ws');
    const touches = s.touches;
    const { ws } = await connect('/services/ws/');
    assert.equal(s.leasesHeld, 0, 'an open socket alone does not hold the service');
    assert.equal(await roundTrip(ws, 'ping'), 'ping');
    assert.ok(s.touches >= touches + 2, 'a message in each direction counts as activity');
    const n = gw.reports.length;
    ws.close();
    await gw.waitReports(n + 1);
    assert.equal(s.extraReleases, 0);
    const report = gw.reports[n]!;
    assert.equal(report.websocket, true);
    assert.equal(report.status, 101);
    assert.equal(report.route, '/services/{id}');
    assert.ok(report.bytes_in > 0 && report.bytes_out > 0);
  });

  test('with websocket_keeps_alive: the lease is held while open and released once on close', async () => {
    const s = svc('ws-keep');
    const before = upstreamSockets.length;
    const { ws } = await connect('/services/ws-keep/x');
    assert.equal(upstreamSockets[before]!.req.url, '/base/x');
    assert.equal(s.leasesHeld, 1);
    const n = gw.reports.length;
    ws.close();
    await gw.waitReports(n + 1);
    assert.equal(s.leasesHeld, 0);
    assert.equal(s.extraReleases, 0);
  });

  test('an upgrade to a cold service waits for the start and carries X-Hestia-Cold-Start', async () => {
    const s = svc('ws-cold');
    const ws = new WebSocket(wsUrl('/services/ws-cold/'));
    const upgraded = once(ws, 'upgrade');
    const opened = once(ws, 'open');
    await s.waitQueued(1);
    s.makeHot(321);
    const [res] = (await upgraded) as [IncomingMessage];
    assert.equal(res.headers['x-hestia-cold-start'], '321');
    await opened;
    assert.equal(await roundTrip(ws, 'warm'), 'warm');
    ws.close();
    await once(ws, 'close');
  });

  test('shutdown destroys open tunnels', async () => {
    const g = await startProxyGateway({ ws: { base_url: echo.url } });
    (g.handles.get('ws') as ControlledService).state = 'hot';
    const ws = new WebSocket(`ws://127.0.0.1:${g.port}/services/ws/`);
    await once(ws, 'open');
    const closed = once(ws, 'close');
    await g.close();
    await closed;
    assert.equal(ws.readyState, WebSocket.CLOSED);
  });

  test('gateway shutdown with an open WebSocket completes after the grace period (tunnels are cut)', async () => {
    const g = await startTestGateway({ services: { ws: { base_url: echo.url } }, server: { shutdown_grace_ms: 50 } });
    const ws = new WebSocket(`ws://127.0.0.1:${g.port}/services/ws/`);
    await once(ws, 'open');
    const closed = once(ws, 'close');
    // Without the proxy cutting its tunnels, server.close() would wait for this socket forever.
    await g.close();
    await closed;
  });
});
