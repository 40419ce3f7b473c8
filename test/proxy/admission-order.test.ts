/**
 * One admission pipeline for every way in (src/proxy/admission.ts): the HTTP proxy
 * (`/services/{id}/…`), a WebSocket upgrade and the dispatcher (`POST /v1/requests`) are walked
 * through the same cases and must answer each with the same status and code:
 * shutting down beats an unknown id (503), auth beats an unknown id (401, no service list), a
 * wrong key (401), an unknown id (404), a cold service whose start fails (503), a good request.
 *
 * Real server and proxy (startProxyGateway) around hand-driven services, real upstreams, real
 * HTTP on 127.0.0.1, the gateway's real auth (config `auth`).
 */
import assert from 'node:assert/strict';
import { type IncomingMessage, request } from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { hashApiKey } from '../../src/auth/api-keys.ts';
import type { ServiceHandle } from '../../src/services/types.ts';
import { send } from '../helpers/client.ts';
import { type ControlledService, type ProxyGateway, startProxyGateway } from '../helpers/service-doubles.ts';
import { echoHandler, startUpstream, type Upstream } from '../helpers/upstream.ts';

const KEY = 'hk_admission_order_key_0123456789';
/** A key limited to the service `hot`. */
const SCOPED = 'hk_admission_order_scoped_0123456789';

type Gateway = ProxyGateway & { handles: Map<string, ServiceHandle> };

/** What a door answered: the HTTP status the client saw, and the Hestia code if it was refused. */
interface Answer {
  status: number;
  code: string | null;
  /** The error body listed the configured services. */
  listsServices: boolean;
}

function parseAnswer(status: number, body: string): Answer {
  if (status < 300) return { status, code: null, listsServices: false };
  const parsed = JSON.parse(body) as { code?: string; services?: unknown };
  return { status, code: parsed.code ?? null, listsServices: parsed.services !== undefined };
}

/** Each door, asked for service `id` with the given request headers. */
const DOORS: Record<string, (gw: Gateway, id: string, headers: Record<string, string>) => Promise<Answer>> = {
  async http(gw, id, headers) {
    const r = await send(gw.url, `/services/${id}/x`, { headers });
    return parseAnswer(r.status, r.body);
  },

  async websocket(gw, id, headers) {
    const req = request({
      host: '127.0.0.1',
      port: gw.port,
      path: `/services/${id}/ws`,
      agent: false,
      headers: {
        ...headers,
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        'sec-websocket-version': '13',
      },
    });
    const answered = new Promise<{ res: IncomingMessage; socket?: Socket }>((resolve, reject) => {
      req.once('upgrade', (res: IncomingMessage, socket: Socket) => resolve({ res, socket }));
      req.once('response', (res: IncomingMessage) => resolve({ res }));
      req.once('error', reject);
    });
    req.end();
    const { res, socket } = await answered;
    if (socket !== undefined) {
      socket.destroy();
      // Answered as a good request: 101 is the upgrade's "200".
      return { status: 200, code: null, listsServices: false };
    }
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    return parseAnswer(res.statusCode ?? 0, Buffer.concat(chunks).toString());
  },

  async dispatcher(gw, id, headers) {
    const r = await send(gw.url, '/v1/requests', {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ serviceId: id, method: 'GET', path: '/x' }),
    });
    if (r.status === 200) {
      // The upstream's own status travels inside the dispatcher's 200.
      const inner = (JSON.parse(r.body) as { status: number }).status;
      return { status: inner, code: null, listsServices: false };
    }
    return parseAnswer(r.status, r.body);
  },
};

let up: Upstream;
let wss: WebSocketServer;

before(async () => {
  up = await startUpstream(echoHandler);
  wss = new WebSocketServer({ server: up.server });
});

after(async () => {
  wss.close();
  await up.close();
});

describe('auth off', () => {
  let gw: Gateway;

  before(async () => {
    gw = await startProxyGateway({ hot: { base_url: up.url }, cold: { base_url: up.url } });
    (gw.handles.get('hot') as ControlledService).state = 'hot';
  });
  after(() => gw.close());

  /** Walk every door through one case; `prepare` runs while that door's request is in flight. */
  async function eachDoor(
    id: string,
    during?: () => Promise<void>,
  ): Promise<Record<string, Answer & { reported: number }>> {
    const out: Record<string, Answer & { reported: number }> = {};
    for (const [name, door] of Object.entries(DOORS)) {
      const n = gw.reports.length;
      const [answer] = await Promise.all([door(gw, id, {}), during?.()]);
      // Every admitted request is reported once, whatever the door (the tunnel when it closes).
      await gw.waitReports(n + 1);
      out[name] = { ...answer, reported: gw.reports[n]!.status };
    }
    return out;
  }

  test('shutting down comes first, even for an unknown id: 503 HESTIA_SHUTTING_DOWN from every door', async () => {
    gw.setShuttingDown(true);
    try {
      for (const [name, a] of Object.entries(await eachDoor('nope'))) {
        assert.equal(a.status, 503, name);
        assert.equal(a.code, 'HESTIA_SHUTTING_DOWN', name);
        assert.equal(a.reported, 503, name);
      }
    } finally {
      gw.setShuttingDown(false);
    }
  });

  test('an unknown id: 404 HESTIA_UNKNOWN_SERVICE from every door', async () => {
    for (const [name, a] of Object.entries(await eachDoor('nope'))) {
      assert.equal(a.status, 404, name);
      assert.equal(a.code, 'HESTIA_UNKNOWN_SERVICE', name);
      assert.equal(a.reported, 404, name);
    }
    // Nothing names an unknown id in the metrics: reported without a service.
    assert.equal(gw.reports.at(-1)!.service_id, null);
  });

  test('a cold service whose start fails: 503 HESTIA_START_FAILED from every door', async () => {
    const cold = gw.handles.get('cold') as ControlledService;
    const answers = await eachDoor('cold', async () => {
      await cold.waitQueued(1);
      cold.failStart();
    });
    for (const [name, a] of Object.entries(answers)) {
      assert.equal(a.status, 503, name);
      assert.equal(a.code, 'HESTIA_START_FAILED', name);
      assert.equal(a.reported, 503, name);
    }
    assert.equal(cold.leasesGranted, 0);
  });

  test('a good request is forwarded by every door, and its lease released', async () => {
    const hot = gw.handles.get('hot') as ControlledService;
    for (const [name, a] of Object.entries(await eachDoor('hot'))) {
      assert.equal(a.status, 200, name);
      assert.equal(a.code, null, name);
    }
    assert.equal(hot.leasesGranted, 3);
    assert.equal(hot.leasesHeld, 0);
    assert.equal(hot.extraReleases, 0);
  });
});

describe('auth on', () => {
  let gw: Gateway;

  before(async () => {
    gw = await startProxyGateway(
      { hot: { base_url: up.url } },
      {
        config: {
          auth: {
            enabled: true,
            api_keys: [
              { name: 'test', sha256: hashApiKey(KEY) },
              { name: 'scoped', sha256: hashApiKey(SCOPED), services: ['hot'] },
            ],
          },
        },
      },
    );
    (gw.handles.get('hot') as ControlledService).state = 'hot';
  });
  after(() => gw.close());

  async function eachDoor(id: string, headers: Record<string, string>): Promise<Record<string, Answer>> {
    const out: Record<string, Answer> = {};
    for (const [name, door] of Object.entries(DOORS)) out[name] = await door(gw, id, headers);
    return out;
  }

  test('shutting down comes before auth: 503 from every door, even without a key', async () => {
    gw.setShuttingDown(true);
    try {
      for (const [name, a] of Object.entries(await eachDoor('nope', {}))) {
        assert.equal(a.status, 503, name);
        assert.equal(a.code, 'HESTIA_SHUTTING_DOWN', name);
      }
    } finally {
      gw.setShuttingDown(false);
    }
  });

  test('auth comes before the unknown-id answer: 401 from every door, and no service list', async () => {
    for (const [name, a] of Object.entries(await eachDoor('nope', {}))) {
      assert.equal(a.status, 401, name);
      assert.equal(a.code, 'HESTIA_UNAUTHORIZED', name);
      assert.equal(a.listsServices, false, name);
    }
  });

  test('a known id with a wrong key: 401 HESTIA_UNAUTHORIZED from every door', async () => {
    for (const [name, a] of Object.entries(await eachDoor('hot', { 'x-api-key': 'hk_wrong_key_0123456789abcdef' }))) {
      assert.equal(a.status, 401, name);
      assert.equal(a.code, 'HESTIA_UNAUTHORIZED', name);
    }
    assert.equal((gw.handles.get('hot') as ControlledService).leasesGranted, 0);
  });

  test('with the key: an unknown id is 404 from every door, a known one forwarded', async () => {
    for (const [name, a] of Object.entries(await eachDoor('nope', { 'x-api-key': KEY }))) {
      assert.equal(a.status, 404, name);
      assert.equal(a.code, 'HESTIA_UNKNOWN_SERVICE', name);
    }
    for (const [name, a] of Object.entries(await eachDoor('hot', { 'x-api-key': KEY }))) {
      assert.equal(a.status, 200, name);
    }
  });

  test('a key limited to other services: 403 for an unknown id from every door, and no service list', async () => {
    for (const [name, a] of Object.entries(await eachDoor('nope', { 'x-api-key': SCOPED }))) {
      assert.equal(a.status, 403, name);
      assert.equal(a.code, 'HESTIA_FORBIDDEN', name);
      assert.equal(a.listsServices, false, name);
    }
    for (const [name, a] of Object.entries(await eachDoor('hot', { 'x-api-key': SCOPED }))) {
      assert.equal(a.status, 200, name);
    }
  });
});
