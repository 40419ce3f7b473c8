/**
 * `hestia status` (in-process, through src/cli/main.ts) against a real gateway: the table, the
 * defaults from HESTIA_HOST/HESTIA_PORT, API keys when auth is on, and a clear error when no
 * gateway is running.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { generateApiKey } from '../../src/auth/api-keys.ts';
import { defaultUrl, formatTable } from '../../src/cli/status.ts';
import type { ServiceStatus } from '../../src/services/types.ts';
import { runCli } from '../helpers/cli.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { fixtureService, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

/** The command must not see a developer's HESTIA_* settings. */
const clean = { HESTIA_HOST: undefined, HESTIA_PORT: undefined, HESTIA_API_KEY: undefined };

test('hestia status prints one row per service: state, machine, in flight, queued, last used, idle countdown', async (t) => {
  const port = await freePort();
  const gw = await startTestGateway({
    services: {
      web: fixtureService(port, [], { idle_timeout_ms: 600_000 }),
      'big-model': { base_url: 'http://127.0.0.1:9' },
    },
  });
  t.after(() => gw.close());
  const rec = new EventRecorder(gw.ctx.bus);
  await (await fetch(`${gw.url}/services/web/`)).arrayBuffer();
  await rec.nth('service_ready', 1);

  const r = await runCli(['status', '--url', gw.url], { env: clean });
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  assert.match(lines[0]!, /^SERVICE\s+STATE\s+MACHINE\s+IN FLIGHT\s+QUEUED\s+LAST USED\s+IDLE STOP IN$/);
  const web = lines.find((l) => l.startsWith('web '));
  assert.ok(web, r.stdout);
  assert.match(web, /^web\s+hot\s+local\s+0\s+0\s+\d+ s ago\s+(9|10) min \d+ s$/);
  const big = lines.find((l) => l.startsWith('big-model'));
  assert.match(big ?? '', /^big-model\s+cold\s+local\s+0\s+0\s+never\s+never$/, 'idle_timeout_ms 0: never');
  assert.equal(lines.length, 3, 'header + web + big-model (no built-in ollama beside a file that defines services)');

  // Defaults come from HESTIA_HOST / HESTIA_PORT; --json prints the service objects.
  const { port: gwPort } = new URL(gw.url);
  const j = await runCli(['status', '--json'], { env: { ...clean, HESTIA_HOST: '0.0.0.0', HESTIA_PORT: gwPort } });
  assert.equal(j.code, 0, j.stderr);
  const parsed = JSON.parse(j.stdout) as { services: ServiceStatus[] };
  assert.deepEqual(
    parsed.services.map((s) => [s.serviceId, s.state]),
    [
      ['web', 'hot'],
      ['big-model', 'cold'],
    ],
  );
});

test('hestia status with auth on: a clear message without a key, the table with --api-key or HESTIA_API_KEY', async (t) => {
  const key = generateApiKey();
  const gw = await startTestGateway({
    services: { a: { base_url: 'http://127.0.0.1:9' } },
    auth: { enabled: true, api_keys: [{ name: 'cli', sha256: key.sha256 }] },
  });
  t.after(() => gw.close());
  const none = await runCli(['status', '--url', gw.url], { env: clean });
  assert.equal(none.code, 1);
  assert.match(none.stderr, /requires an API key: pass --api-key KEY or set HESTIA_API_KEY/);
  const wrong = await runCli(['status', '--url', gw.url, '--api-key', 'hst_nope'], { env: clean });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /refused the API key/);
  assert.ok(!wrong.stderr.includes('hst_nope'), 'the key is not echoed');
  const flag = await runCli(['status', '--url', gw.url, '--api-key', key.key], { env: clean });
  assert.equal(flag.code, 0, flag.stderr);
  assert.match(flag.stdout, /^a\s+cold/m);
  const env = await runCli(['status', '--url', gw.url], { env: { ...clean, HESTIA_API_KEY: key.key } });
  assert.equal(env.code, 0, env.stderr);
  assert.match(env.stdout, /^a\s+cold/m);
});

test('hestia status says clearly when no gateway is running', async () => {
  const port = await freePort();
  const r = await runCli(['status'], { env: { ...clean, HESTIA_PORT: String(port) } });
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    new RegExp(
      `no gateway is answering at http://127\\.0\\.0\\.1:${port} \\(connection refused\\)\\. Is \`hestia serve\` running\\?`,
    ),
  );
  assert.equal(r.stdout, '');
  const usage = await runCli(['status', '--bogus'], { env: clean });
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /usage: hestia status/);
});

test('status layout helpers: default URL and an empty table', () => {
  assert.equal(defaultUrl({}), 'http://127.0.0.1:8080');
  assert.equal(defaultUrl({ HESTIA_HOST: '::1', HESTIA_PORT: '9000' }), 'http://[::1]:9000');
  assert.equal(defaultUrl({ HESTIA_HOST: '::' }), 'http://127.0.0.1:8080');
  assert.match(formatTable([], Date.now()), /\(no services configured\)/);
});
