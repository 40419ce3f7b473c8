/**
 * The real bin/hestia.mjs as a child process: the few things the in-process CLI tests
 * (runCli) cannot show — that the bin loads and runs the sources (or the current bundle), that
 * a command's result becomes the process exit code, and that `serve` answers and stops on a
 * real SIGTERM. (SIGHUP to a real process: test/cli/reload.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { spawnGateway } from '../helpers/child-gateway.ts';
import { runBin } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'hestia-smoke-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const clean = { HESTIA_CONFIG_PATH: undefined, HESTIA_DB_PATH: undefined, HESTIA_PORT: undefined };

test('real bin: an invalid config file exits 1 naming the problem', async () => {
  const file = join(dir, 'bad.yml');
  writeFileSync(file, 'services:\n  a:\n    base_url: http://a:1\n    queue_size: 0\n');
  const bad = await runBin(['check-config', file], { env: clean });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /services\.a\.queue_size: must be >= 1, got 0/);
  assert.equal(bad.stdout, '');
});

test('real bin: `serve` answers /healthz and exits 0 on SIGTERM', async (t) => {
  const file = join(dir, 'ok.yml');
  writeFileSync(file, 'services:\n  a:\n    base_url: http://127.0.0.1:9\n');
  const gw = await spawnGateway(['serve', '--config', file], { ...clean, HESTIA_DB_PATH: join(dir, 'h.db') });
  t.after(() => gw.kill());
  assert.equal((await fetch(`${gw.url}/healthz`)).status, 200);
  gw.child.kill('SIGTERM');
  assert.equal(await gw.exited, 0);
  assert.ok(gw.lines.some((l) => l.event_type === 'shutdown' && l.signal === 'SIGTERM'));
});

test('real bin: hash-password reads a real pipe', async () => {
  const r = await runBin(['hash-password'], { stdin: 'secret\n', env: clean });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^scrypt\$/);
});
