/**
 * The http launcher against a real control server on 127.0.0.1: its /start endpoint starts a
 * real HTTP server on the port it is given, /stop closes it, so start/stop have effects the
 * test can check on the wire.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { httpLauncherSchema } from '../../src/config/schema.ts';
import { createHttpLauncher } from '../../src/launchers/http/index.ts';
import { type LaunchContext, LaunchError } from '../../src/launchers/types.ts';
import { createLogger } from '../../src/observability/logger.ts';
import { launchCtx, testConfig } from '../helpers/launchers.ts';
import { freePort, portOpen } from '../helpers/net.ts';

const TOKEN = 'Bearer very-secret-token-42';
let control: Server;
let base: string;
const seen: Array<{ method: string; url: string; headers: IncomingMessage['headers']; body: string }> = [];
const services = new Map<number, Server>();

async function readBody(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const c of req) s += c;
  return s;
}

before(async () => {
  control = createServer(async (req, res) => {
    const body = await readBody(req);
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    if (req.url === '/fail') {
      res.writeHead(500, { 'content-type': 'text/plain' });
      return res.end('boom: GPU quota exceeded');
    }
    if (req.url === '/hang') return; // never answers
    let port = 0;
    try {
      port = Number((JSON.parse(body || '{}') as { port?: unknown }).port);
    } catch {
      /* not JSON: a bad request below */
    }
    if (req.url === '/start' && port) {
      const svc = createServer((_q, r) => r.end('service up'));
      await new Promise<void>((r) => svc.listen(port, '127.0.0.1', r));
      services.set(port, svc);
      res.writeHead(202);
      return res.end();
    }
    if (req.url === '/stop' && port) {
      const svc = services.get(port);
      services.delete(port);
      if (svc) {
        svc.closeAllConnections();
        await new Promise<void>((r) => svc.close(() => r()));
      }
      res.writeHead(204);
      return res.end();
    }
    res.writeHead(400);
    res.end('bad request');
  });
  await new Promise<void>((r) => control.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(control.address() as AddressInfo).port}`;
});

after(async () => {
  for (const s of services.values()) s.close();
  control.closeAllConnections();
  await new Promise<void>((r) => control.close(() => r()));
});

function httpLauncher(raw: Record<string, unknown>) {
  const cfg = httpLauncherSchema.parse({ type: 'http', ...raw });
  return createHttpLauncher(cfg, { serviceId: 'fn', config: testConfig({}), log: launchCtx('fn').log });
}

describe('http launcher', () => {
  test('start posts the JSON body (templates expanded) with headers; the started service answers; stop stops it', async () => {
    const port = await freePort();
    const l = httpLauncher({
      start_url: `${base}/start`,
      stop_url: `${base}/stop`,
      headers: { Authorization: TOKEN, 'X-Service': '{service}' },
      body: { port: '{port}', service: '{service}', nested: ['{machine}'] },
    });
    const ctx = launchCtx('fn', { port, machineId: 'cloud' });
    const before = seen.length;

    const h = await l.start(ctx);
    assert.equal(h.info?.http_status, 202);
    const req = seen[before]!;
    assert.equal(req.method, 'POST');
    assert.equal(req.headers.authorization, TOKEN);
    assert.equal(req.headers['x-service'], 'fn');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(req.body), { port: String(port), service: 'fn', nested: ['cloud'] });
    assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'service up');

    await l.stop(h, ctx);
    assert.equal(await portOpen(port), false, 'the service is really stopped');
    await l.start(ctx);
    assert.equal(await portOpen(port), true, 'start again works');
    await l.stop(h, ctx);
  });

  test('a start answered with 500 is a LaunchError with the status and a body excerpt', async () => {
    const l = httpLauncher({ start_url: `${base}/fail` });
    await assert.rejects(l.start(launchCtx('fn')), (e: unknown) => {
      assert.ok(e instanceof LaunchError);
      assert.match(
        e.message,
        /http start \(POST http:\/\/127\.0\.0\.1:\d+\/fail\) answered 500: boom: GPU quota exceeded/,
      );
      assert.equal(e.details.status, 500);
      return true;
    });
  });

  test('a string body is sent as is, with the configured method', async () => {
    const before = seen.length;
    const l = httpLauncher({ start_url: `${base}/other`, method: 'put', body: 'wake {service}', headers: {} });
    await assert.rejects(l.start(launchCtx('fn')), /answered 400: bad request/);
    assert.equal(seen[before]!.method, 'PUT');
    assert.equal(seen[before]!.body, 'wake fn');
  });

  test('a start that gets no answer within timeout_ms fails with a timeout message', async () => {
    const l = httpLauncher({ start_url: `${base}/hang`, timeout_ms: 300 });
    await assert.rejects(l.start(launchCtx('fn')), /http start \(POST .*\/hang\) failed: no answer within 300 ms/);
  });

  test('without stop_url, stop does nothing and succeeds', async () => {
    const before = seen.length;
    await httpLauncher({ start_url: `${base}/start` }).stop({}, launchCtx('fn'));
    assert.equal(seen.length, before);
  });

  test('header values (tokens) and query strings never reach log lines or error messages', async () => {
    let logText = '';
    const sink = new Writable({
      write(chunk, _e, cb) {
        logText += chunk.toString();
        cb();
      },
    });
    const ctx: LaunchContext = { ...launchCtx('fn'), log: createLogger({ level: 'debug', destination: sink }) };
    const l = httpLauncher({ start_url: `${base}/fail?api_key=qs-secret-9`, headers: { Authorization: TOKEN } });
    const err = await l.start(ctx).then(
      () => assert.fail('should fail'),
      (e: unknown) => e as LaunchError,
    );
    assert.ok(logText.includes('http start request'), 'the request was logged');
    for (const secret of ['very-secret-token-42', 'qs-secret-9']) {
      assert.ok(!logText.includes(secret), `log has no ${secret}`);
      assert.ok(!JSON.stringify({ m: err.message, d: err.details }).includes(secret), `error has no ${secret}`);
    }
  });
});
