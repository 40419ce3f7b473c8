/**
 * SPEC §12 output capture with the `process` launcher (real children): the service's
 * stdout/stderr in a bounded ring, read through `GET /v1/services/{id}/logs?tail=N` and followed
 * through `/logs/stream` (SSE), secrets from the config masked, lines still in the gateway log
 * tagged with the service id. Bad input: 100 MB of output and one 10 MB line keep the ring
 * within its bounds, and a log client that never reads is dropped.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { OutputLine } from '../../src/observability/output-ring.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { freePort } from '../helpers/net.ts';

const CHATTY = fileURLToPath(new URL('../fixtures/chatty-service.mjs', import.meta.url));
const SECRET = 'hf_s3cr3t_value_42';

let gw: TestGateway;

function chatty(port: number, mb: number, longMb: number, extra: Record<string, unknown> = {}) {
  return {
    base_url: `http://127.0.0.1:${port}`,
    health_url: `http://127.0.0.1:${port}/health`,
    health_interval_ms: 20,
    start_timeout_ms: 120_000,
    launcher: {
      type: 'process',
      command: [process.execPath, CHATTY, '{port}', String(mb), String(longMb)],
      env: { HF_TOKEN: SECRET },
    },
    ...extra,
  };
}

before(async () => {
  gw = await startTestGateway({ services: { small: chatty(await freePort(), 0, 0) } }, { level: 'info' });
});
after(async () => {
  await gw.close();
});

async function logs(id: string, tail?: number): Promise<OutputLine[]> {
  const res = await fetch(`${gw.url}/v1/services/${id}/logs${tail === undefined ? '' : `?tail=${tail}`}`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { lines: OutputLine[] }).lines;
}

/** Reads SSE `data:` frames from a stream until `until` says stop. */
async function readFrames(res: Response, until: (lines: OutputLine[]) => boolean): Promise<OutputLine[]> {
  const reader = res.body!.getReader();
  const got: OutputLine[] = [];
  let text = '';
  const dec = new TextDecoder();
  while (!until(got)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
    let i = text.indexOf('\n\n');
    while (i >= 0) {
      const fr = text.slice(0, i);
      text = text.slice(i + 2);
      for (const l of fr.split('\n')) if (l.startsWith('data: ')) got.push(JSON.parse(l.slice(6)) as OutputLine);
      i = text.indexOf('\n\n');
    }
  }
  await reader.cancel();
  return got;
}

test('a process child: output via /logs and /logs/stream, binary made safe, secrets masked, also in the gateway log', async () => {
  // Follow the stream before the service starts: the lines arrive live.
  const ac = new AbortController();
  const stream = await fetch(`${gw.url}/v1/services/small/logs/stream`, { signal: ac.signal });
  assert.equal(stream.status, 200);
  assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
  const followed = readFrames(stream, (got) => got.some((l) => l.text === 'ready'));

  const res = await fetch(`${gw.url}/services/small/`);
  assert.equal(res.status, 200);
  await res.arrayBuffer();

  const live = await followed;
  ac.abort();
  assert.deepEqual(
    live.map((l) => [l.stream, l.text]),
    [
      ['stdout', '\ufffd\ufffd\ufffd\ufffd\ufffd[31m'],
      ['stdout', 'secret is ***'],
      ['stdout', 'ready'],
    ],
  );

  const lines = await logs('small', 2);
  assert.deepEqual(
    lines.map((l) => l.text),
    ['secret is ***', 'ready'],
  );
  for (const l of lines) {
    assert.equal(l.stream, 'stdout');
    assert.ok(!Number.isNaN(Date.parse(l.time)));
  }
  assert.ok(!JSON.stringify(await logs('small')).includes(SECRET), 'the secret is nowhere in the API');
  assert.ok(!gw.logText().includes(SECRET), 'nor in the gateway log');
  const logged = gw.logs().filter((l) => l.event_type === 'service_output' && l.service_id === 'small');
  assert.ok(logged.some((l) => l.msg === 'secret is ***' && l.stream === 'stdout'));

  const bad = await fetch(`${gw.url}/v1/services/small/logs?tail=-1`);
  assert.equal(bad.status, 400);
  assert.equal(((await bad.json()) as { code: string }).code, 'HESTIA_BAD_REQUEST');
  const unknown = await fetch(`${gw.url}/v1/services/nope/logs`);
  assert.equal(unknown.status, 404);
});

test('100 MB of output and a 10 MB line: the ring stays within 1000 lines and 1 MiB; a client that never reads is dropped', async (t) => {
  // Its own gateway, logging warnings only: the 100 MB must not pile up in the test's in-memory log.
  const gw = await startTestGateway(
    { services: { flood: chatty(await freePort(), 100, 10, { output_lines: 1000, output_bytes: 1024 * 1024 }) } },
    { level: 'warn' },
  );
  t.after(() => gw.close());
  const events = new EventRecorder(gw.ctx.bus);
  // A log client that never reads: a raw socket, paused from the start.
  const sock = connect(Number(new URL(gw.url).port), '127.0.0.1');
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  sock.pause();
  sock.write('GET /v1/services/flood/logs/stream HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const ended = new Promise<void>((resolve) => {
    sock.on('end', () => resolve());
    sock.on('close', () => resolve());
    sock.on('error', () => resolve());
  });

  const res = await fetch(`${gw.url}/services/flood/health`);
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  await events.nth('service_ready', 1);

  const got = await fetch(`${gw.url}/v1/services/flood/logs?tail=100000`);
  const lines = ((await got.json()) as { lines: OutputLine[] }).lines;
  assert.ok(lines.length <= 1000, `at most 1000 lines kept (${lines.length})`);
  const bytes = lines.reduce((n, l) => n + Buffer.byteLength(l.text), 0);
  assert.ok(bytes <= 1024 * 1024, `at most 1 MiB kept (${bytes})`);
  // stdout's last line; the two pipes are read independently, so the end of the long stderr
  // line may land after it.
  assert.equal(lines.filter((l) => l.stream === 'stdout').at(-1)?.text, 'ready');
  const cut = lines.find((l) => l.stream === 'stderr');
  assert.ok(cut, 'the long stderr line is kept, cut');
  assert.match(cut.text, /^y+ … \[line cut: \d+ more bytes\]$/);
  assert.ok(Buffer.byteLength(cut.text) < 20 * 1024, `cut to the line bound (${Buffer.byteLength(cut.text)} bytes)`);

  // The non-reading client was dropped: once it reads, its stream ends (a kept stream never would).
  sock.resume();
  await ended;
  sock.destroy();
});

test('gateway shutdown ends open log streams (close does not wait for them)', async () => {
  const own = await startTestGateway({ services: { small: chatty(await freePort(), 0, 0) } }, { level: 'warn' });
  const res = await fetch(`${own.url}/v1/services/small/logs/stream`);
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read(); // the stream's head
  const ended = (async () => {
    for (;;) if ((await reader.read().catch(() => ({ done: true }))).done) return;
  })();
  await own.close();
  await ended;
});
