/**
 * Event webhooks (src/observability/webhooks.ts, docs/webhooks.md) against real receivers on
 * 127.0.0.1: events in order with the configured headers, retries of a failing answer, a dead
 * receiver (one that accepts and never answers, one that refuses) never holding up a cold start,
 * the bounded queue, reload, the Prometheus counter and the `webhook_failed` event; and the
 * config: event names with did-you-mean, URL check, header values masked by check-config.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { load } from 'js-yaml';
import { formatIssue, resolveConfig } from '../../src/config/resolve.ts';
import { runCli } from '../helpers/cli.ts';
import { EventRecorder } from '../helpers/events.ts';
import { configFrom, startTestGateway } from '../helpers/gateway.ts';
import { fixtureService, tempDir } from '../helpers/lifecycle.ts';
import { freePort, refusedPort } from '../helpers/net.ts';
import { parseExposition } from '../helpers/prom-text.ts';
import { waitFor } from '../helpers/wait.ts';

const tmp = tempDir();
const cleanEnv = { HESTIA_CONFIG_PATH: undefined, HESTIA_PORT: undefined };
after(() => tmp.cleanup());

interface Delivery {
  headers: IncomingMessage['headers'];
  body: { type: string; serviceId: string | null; time: string; ts: number; details: Record<string, unknown> };
}

/** A real receiver; `answer` decides each POST's status (default 204). */
async function receiver(answer: (d: Delivery, n: number) => number = () => 204) {
  const got: Delivery[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const d: Delivery = { headers: req.headers, body: JSON.parse(Buffer.concat(chunks).toString()) };
      got.push(d);
      res.writeHead(answer(d, got.length)).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hook`,
    got,
    types: () => got.map((d) => `${d.body.type} ${d.body.serviceId ?? ''}`.trim()),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A port that accepts connections and never answers (reads and holds them). */
async function blackHole() {
  const sockets = new Set<Socket>();
  let requests = 0;
  const server = createNetServer((s) => {
    sockets.add(s);
    s.on('data', (b) => {
      if (b.toString().startsWith('POST ')) requests++;
    });
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests: () => requests,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function metricValue(url: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return parseExposition(text).sum('hestia_webhook_deliveries_total', labels);
}

describe('webhooks: delivery', () => {
  test('events reach the receiver in order, as JSON, with the configured headers', async (t) => {
    const hook = await receiver();
    t.after(hook.close);
    const port = await freePort();
    const gw = await startTestGateway({
      webhooks: [
        {
          url: hook.url,
          events: ['service_start', 'service_ready', 'service_stop', 'service_stopped'],
          headers: { Authorization: 'Bearer hook-secret-123' },
        },
      ],
      services: { web: fixtureService(port, []) },
    });
    t.after(() => gw.close());
    await (await fetch(`${gw.url}/services/web/`)).arrayBuffer();
    assert.equal((await fetch(`${gw.url}/v1/services/web/stop`, { method: 'POST' })).status, 202);
    await waitFor(() => hook.got.length === 4, { message: 'four deliveries' });
    assert.deepEqual(hook.types(), [
      'service_start web',
      'service_ready web',
      'service_stop web',
      'service_stopped web',
    ]);
    const first = hook.got[0]!;
    assert.equal(first.headers['content-type'], 'application/json');
    assert.equal(first.headers.authorization, 'Bearer hook-secret-123');
    assert.equal(first.headers['x-hestia-event'], 'service_start');
    assert.match(String(first.headers['x-hestia-delivery']), /^[0-9a-f-]{36}$/);
    assert.equal(new Date(first.body.time).getTime(), first.body.ts);
    assert.equal(typeof hook.got[1]!.body.details.coldStartMs, 'number');
    assert.equal(await metricValue(gw.url, { result: 'ok' }), 4);
  });

  test('a failing answer is retried (same delivery id), then the next event follows in order', async (t) => {
    const hook = await receiver((_d, n) => (n <= 2 ? 503 : 200));
    t.after(hook.close);
    const gw = await startTestGateway({
      webhooks: [{ url: hook.url, events: ['*'], retry_delay_ms: 5, max_attempts: 3 }],
      services: { a: { base_url: 'http://127.0.0.1:1' } },
    });
    t.after(() => gw.close());
    gw.ctx.bus.publish('service_start', 'a', { reason: 'one' });
    gw.ctx.bus.publish('service_stop', 'a', { reason: 'two' });
    await waitFor(() => hook.got.length === 4, { message: 'three tries of the first, then the second' });
    const ids = hook.got.map((d) => d.headers['x-hestia-delivery']);
    assert.equal(new Set(ids.slice(0, 3)).size, 1, 'the retries carry the same delivery id');
    assert.notEqual(ids[3], ids[0]);
    assert.deepEqual(
      hook.got.map((d) => d.body.details.reason),
      ['one', 'one', 'one', 'two'],
    );
  });

  test('dead receivers (never answers; refuses) do not hold up a cold start; failures are an event and a counter', async (t) => {
    const good = await receiver();
    t.after(good.close);
    const hole = await blackHole();
    t.after(hole.close);
    const refused = `http://127.0.0.1:${await refusedPort()}/hook`;
    const port = await freePort();
    const gw = await startTestGateway({
      webhooks: [
        { url: hole.url, events: ['*'], timeout_ms: 600_000 },
        { url: refused, events: ['service_start', 'service_ready'], max_attempts: 2, retry_delay_ms: 5 },
        { url: good.url, events: ['service_start', 'service_ready', 'webhook_failed'] },
      ],
      services: { web: fixtureService(port, []) },
    });
    t.after(() => gw.close());
    const rec = new EventRecorder(gw.ctx.bus);

    const res = await fetch(`${gw.url}/services/web/`);
    assert.equal(res.status, 200, 'the cold start completed');
    await res.arrayBuffer();
    // When the client had its answer, the black hole had taken the first POST and not answered it:
    // the start went on meanwhile.
    await waitFor(() => hole.requests() >= 1, { message: 'the black hole got its first POST' });
    assert.equal(hole.requests(), 1, 'one POST at a time per webhook: the second waits behind the first');
    assert.ok(rec.of('service_ready', 'web').length === 1);

    // The refusing receiver's two events fail (2 tries each): one webhook_failed event (rate-limited).
    await waitFor(async () => (await metricValue(gw.url, { result: 'failed' })) === 2, {
      message: 'two failed deliveries counted',
    });
    const failures = rec.of('webhook_failed');
    assert.equal(failures.length, 1, 'rate-limited: one event for the two failures');
    assert.equal(failures[0]!.details.webhook, refused);
    assert.equal(failures[0]!.details.event, 'service_start');
    assert.match(String(failures[0]!.details.error), /ECONNREFUSED/);
    // The good receiver got the lifecycle events in order, and the failure report (whose place
    // among them depends on when the refusals ran out); the black hole is still on its first POST.
    await waitFor(() => good.got.length === 3, { message: 'good receiver: start, ready, webhook_failed' });
    assert.deepEqual(
      good.types().filter((x) => x !== 'webhook_failed'),
      ['service_start web', 'service_ready web'],
    );
    assert.equal(good.got.find((d) => d.body.type === 'webhook_failed')?.body.details.webhook, refused);
    assert.equal(hole.requests(), 1);
  });

  test('a full queue drops the oldest event and counts it', async (t) => {
    const hole = await blackHole();
    t.after(hole.close);
    const gw = await startTestGateway({
      webhooks: [{ url: hole.url, events: ['*'], queue_size: 2, timeout_ms: 600_000 }],
      services: { a: { base_url: 'http://127.0.0.1:1' } },
    });
    t.after(() => gw.close());
    for (let i = 0; i < 5; i++) gw.ctx.bus.publish('service_start', 'a', { i });
    // The first is in flight, two wait; the 4th and 5th pushed out the 2nd and 3rd.
    assert.equal(await metricValue(gw.url, { result: 'dropped' }), 2);
    await waitFor(() => hole.requests() === 1, { message: 'the first POST' });
  });

  test('reload replaces the webhook set', async (t) => {
    const before = await receiver();
    const afterHook = await receiver();
    t.after(before.close);
    t.after(afterHook.close);
    const cfg = (url: string) => ({
      webhooks: [{ url, events: ['service_start'] }],
      services: { a: { base_url: 'http://127.0.0.1:1' } },
    });
    const gw = await startTestGateway(cfg(before.url));
    t.after(() => gw.close());
    gw.ctx.bus.publish('service_start', 'a', { n: 1 });
    await waitFor(() => before.got.length === 1, { message: 'first receiver' });
    const next = configFrom(cfg(afterHook.url));
    next.server.db_path = ':memory:';
    await gw.reload(next);
    gw.ctx.bus.publish('service_start', 'a', { n: 2 });
    await waitFor(() => afterHook.got.length === 1, { message: 'second receiver' });
    assert.equal(before.got.length, 1, 'the removed webhook gets nothing more');
    assert.equal(afterHook.got[0]!.body.details.n, 2);
  });
});

describe('webhooks: config', () => {
  const resolve = (webhooks: unknown) =>
    resolveConfig(JSON.stringify({ webhooks, services: { a: { base_url: 'http://x:1' } } }), {}, { file: 'h.yml' });

  test('an unknown event name is an error with the closest name; a bad URL is named', () => {
    const r = resolve([{ url: 'http://127.0.0.1:9/h', events: ['service_redy'] }]);
    assert.equal(r.ok, false);
    const text = r.ok ? '' : r.issues.map(formatIssue).join('\n');
    assert.match(text, /h\.yml: webhooks\.0\.events\.0: unknown event "service_redy"; did you mean service_ready\?/);
    const u = resolve([{ url: 'ftp://x', events: ['*'] }]);
    assert.match(
      u.ok ? '' : u.issues.map(formatIssue).join('\n'),
      /webhooks\.0\.url: must be an http:\/\/ or https:\/\//,
    );
    const none = resolve([{ url: 'http://x/h', events: [] }]);
    assert.match(
      none.ok ? '' : none.issues.map(formatIssue).join('\n'),
      /webhooks\.0\.events: must name at least one event/,
    );
    const ok = resolve([{ url: 'http://x/h', events: ['*'] }]);
    assert.ok(ok.ok);
    assert.equal(ok.ok && ok.config.webhooks[0]?.max_attempts, 5);
  });

  test('check-config masks every webhook header value', async () => {
    const file = join(tmp.dir, 'hooks.yml');
    writeFileSync(
      file,
      'services:\n  a: {base_url: "http://127.0.0.1:1"}\nwebhooks:\n  - url: https://hooks.example/h\n    events: [service_ready]\n    headers: {X-Gotify-Token: gotify-abc, X-Plain: plain-value-9}\n',
    );
    const r = await runCli(['check-config', file], { env: cleanEnv });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes('gotify-abc') && !r.stdout.includes('plain-value-9'), r.stdout);
    const printed = load(r.stdout) as { webhooks: Array<{ headers: Record<string, string>; url: string }> };
    assert.deepEqual(printed.webhooks[0]!.headers, { 'X-Gotify-Token': '***', 'X-Plain': '***' });
    assert.equal(printed.webhooks[0]!.url, 'https://hooks.example/h');
  });
});
