/**
 * Issue 17 item 16, in-process: every command has --help, unknown options are one line and exit
 * 2 (never a stack trace), `hestia --version`, `serve --port/--host`, and `status` finding the
 * gateway from the config's server.port or refusing a URL without a scheme.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { runCli as runCliInProcess } from '../../src/cli/main.ts';
import { cliEnv, runCli, startCliGateway } from '../helpers/cli.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { tempDir } from '../helpers/lifecycle.ts';
import { logLines } from '../helpers/log-lines.ts';
import { freePort } from '../helpers/net.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

const clean = {
  HESTIA_HOST: undefined,
  HESTIA_PORT: undefined,
  HESTIA_API_KEY: undefined,
  HESTIA_CONFIG_PATH: undefined,
};
const STACK = /\n\s+at /;

test('hestia --help, -h, help: the usage on stdout, exit 0', async () => {
  for (const args of [['--help'], ['-h'], ['help']]) {
    const r = await runCli(args, { env: clean });
    assert.equal(r.code, 0, `${args}: ${r.stderr}`);
    assert.match(r.stdout, /^usage: hestia \[serve\]/);
    assert.equal(r.stderr, '');
  }
});

test('hestia --version prints the package version', async () => {
  const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  for (const args of [['--version'], ['-V']]) {
    const r = await runCli(args, { env: clean });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `hestia ${version}\n`);
  }
});

test('every command has --help (exit 0, usage on stdout, nothing run)', async () => {
  for (const cmd of ['serve', 'check-config', 'keys', 'hash-password', 'status']) {
    const r = await runCli([cmd, '--help'], { env: clean });
    assert.equal(r.code, 0, `${cmd}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^usage: hestia ${cmd === 'serve' ? '\\[serve\\]' : cmd}`), cmd);
    assert.equal(r.stderr, '', cmd);
  }
});

test('an unknown option is one line on stderr and exit 2, for every command', async () => {
  for (const args of [
    ['serve', '--bogus'],
    ['--bogus'],
    ['check-config', '--bogus'],
    ['keys', 'list', '--bogus'],
    ['hash-password', '--bogus'],
    ['status', '--bogus'],
    ['check-config', 'a.yml', 'b.yml'],
  ]) {
    const r = await runCli(args, { env: clean });
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /^hestia [a-z-]+: .*\(see hestia [a-z-]+ --help\)\n$/);
    assert.doesNotMatch(r.stderr, STACK);
  }
});

test('serve --port and --host choose the listen address; a bad --port is exit 2; a refused one one line', async () => {
  const port = await freePort();
  const gw = await startCliGateway(['serve', '--port', String(port), '--host', '127.0.0.1'], {
    ...clean,
    HESTIA_PORT: '1',
  });
  try {
    assert.equal(gw.url, `http://127.0.0.1:${port}`);
    assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
  } finally {
    assert.equal(await gw.stop(), 0);
  }
  const bad = await runCli(['serve', '--port', 'eighty'], { env: clean });
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^hestia serve: --port must be a port number/);
  // Port 1 needs privileges (or is taken): a one-line failure either way, no stack trace.
  const busy = await startTestGateway({ services: {} });
  try {
    const r = await runCli(['serve', '--port', String(busy.port), '--host', '127.0.0.1'], {
      env: { ...clean, HESTIA_LOG_LEVEL: 'error' },
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^hestia: .*EADDRINUSE/);
    assert.doesNotMatch(r.stderr, STACK);
  } finally {
    await busy.close();
  }
});

test("status reads the config's server.port (--config), and refuses a URL without a scheme", async () => {
  const gw = await startTestGateway({ services: { web: { base_url: 'http://127.0.0.1:9' } } });
  try {
    const file = tmp.path('status.yml');
    writeFileSync(file, `server:\n  port: ${gw.port}\nservices:\n  web:\n    base_url: http://127.0.0.1:9\n`);
    const r = await runCli(['status', '--config', file], { env: clean });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^web\s+cold/m);
    // The same file found as HESTIA_CONFIG_PATH, as `serve` would find it.
    const viaEnv = await runCli(['status'], { env: { ...clean, HESTIA_CONFIG_PATH: file } });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
  } finally {
    await gw.close();
  }
  const noScheme = await runCli(['status', '--url', `127.0.0.1:${gw.port}`], { env: clean });
  assert.equal(noScheme.code, 2);
  assert.match(noScheme.stderr, /^hestia status: --url must start with http:\/\/ or https:\/\//);
});

test('SIGTERM while the gateway is still starting: kept, and carried out as a graceful stop once it runs (exit 0)', async () => {
  const cfg = tmp.path('stop-while-starting.yml');
  writeFileSync(cfg, 'services:\n  a:\n    base_url: http://127.0.0.1:9\n');
  const signals = new EventEmitter();
  const lines = logLines();
  const exited = runCliInProcess(['serve', '--config', cfg], {
    stdout: lines.sink,
    stderr: { write: () => true },
    stdin: Readable.from([]),
    env: cliEnv({ HESTIA_HOST: '127.0.0.1', HESTIA_PORT: '0', HESTIA_LOG_LEVEL: 'info', HESTIA_DB_PATH: ':memory:' }),
    signals,
    installed: false,
  });
  // Logged before the gateway is built: the signal arrives while it starts.
  await lines.waitForLine((l) => l.event_type === 'paths');
  assert.equal(signals.emit('SIGTERM', 'SIGTERM'), true, 'someone listens for SIGTERM from the start');
  assert.equal(await exited, 0);
  const events = lines.lines.map((l) => l.event_type);
  assert.ok(events.includes('listening'), 'the start finished first');
  assert.ok(events.indexOf('shutdown') > events.indexOf('listening'), 'then it shut down');
  assert.ok(events.includes('shutdown_complete'));
});
