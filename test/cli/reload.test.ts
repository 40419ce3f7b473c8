import assert from 'node:assert/strict';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ChildGateway, spawnGateway } from '../helpers/child-gateway.ts';
import { type CliGateway, startCliGateway } from '../helpers/cli.ts';

/** An upstream that names itself, and a /slow endpoint that answers only when told to. */
function upstream(name: string): Promise<{ server: Server; url: string; release: () => void }> {
  let release: () => void = () => {};
  const server = createServer((req, res) => {
    if (req.url === '/slow') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('part1 ');
      release = () => res.end('part2');
      return;
    }
    res.end(name);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        server,
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        release: () => release(),
      }),
    ),
  );
}

/**
 * The first test runs the real bin (a real SIGHUP to a real process: the smoke test); the others
 * run `hestia serve` in-process and deliver the signal to the command's own emitter.
 */
describe('config reload (SIGHUP and --watch)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hestia-reload-'));
  const file = join(dir, 'hestia_config.yml');
  const env = { HESTIA_DB_PATH: join(dir, 'h.db') };
  let a: Awaited<ReturnType<typeof upstream>>;
  let b: Awaited<ReturnType<typeof upstream>>;
  const gateways: ChildGateway[] = [];
  const inProcess: CliGateway[] = [];

  before(async () => {
    a = await upstream('A');
    b = await upstream('B');
  });
  after(async () => {
    for (const g of gateways) g.kill();
    for (const g of inProcess) await g.stop();
    a.server.close();
    b.server.close();
    a.server.closeAllConnections();
    b.server.closeAllConnections();
  });

  test('SIGHUP (real bin, real signal) applies a valid new config without dropping an in-flight request', async () => {
    writeFileSync(file, `services:\n  one:\n    base_url: ${a.url}\n`);
    const gw = await spawnGateway(['serve', '--config', file], env);
    gateways.push(gw);
    assert.equal(await (await fetch(`${gw.url}/services/one/`)).text(), 'A');
    assert.equal((await fetch(`${gw.url}/services/two/`)).status, 404);

    // A request in flight across the reload.
    const slow = await fetch(`${gw.url}/services/one/slow`);
    const reader = slow.body!.getReader();
    const first = await reader.read();
    assert.equal(Buffer.from(first.value!).toString(), 'part1 ');

    writeFileSync(file, `services:\n  one:\n    base_url: ${a.url}\n  two:\n    base_url: ${b.url}\n`);
    const reloaded = gw.waitForLine((l) => l.event_type === 'config_reloaded');
    gw.child.kill('SIGHUP');
    const line = await reloaded;
    assert.deepEqual(line.added, ['two']);

    a.release();
    let rest = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      rest += Buffer.from(value).toString();
    }
    assert.equal(rest, 'part2', 'the in-flight response completed');
    assert.equal(await (await fetch(`${gw.url}/services/two/`)).text(), 'B');
    gw.child.kill('SIGTERM');
    assert.equal(await gw.exited, 0);
  });

  test('an invalid config on SIGHUP is logged and ignored; the old one keeps serving', async () => {
    writeFileSync(file, `services:\n  one:\n    base_url: ${a.url}\n`);
    const gw = await startCliGateway(['serve', '--config', file], env);
    inProcess.push(gw);
    writeFileSync(file, `services:\n  one:\n    base_url: ${a.url}\n    queue_size: 0\n`);
    const failed = gw.waitForLine((l) => l.event_type === 'config_reload_failed');
    gw.signal('SIGHUP');
    const line = await failed;
    assert.match(String(line.msg), /services\.one\.queue_size: must be >= 1, got 0/);
    assert.match(String(line.msg), /keeping the current config/);
    assert.equal(await (await fetch(`${gw.url}/services/one/`)).text(), 'A');
    gw.signal('SIGTERM');
    assert.equal(await gw.exited, 0);
  });

  test('--watch reloads when the file is replaced (as editors do, by rename)', async () => {
    writeFileSync(file, `services:\n  one:\n    base_url: ${a.url}\n`);
    const gw = await startCliGateway(['serve', '--config', file, '--watch'], env);
    inProcess.push(gw);
    const tmp = join(dir, '.hestia_config.yml.swp');
    writeFileSync(tmp, `services:\n  one:\n    base_url: ${b.url}\n`);
    const reloaded = gw.waitForLine((l) => l.event_type === 'config_reloaded');
    renameSync(tmp, file);
    await reloaded;
    assert.equal(await (await fetch(`${gw.url}/services/one/`)).text(), 'B', 'service one now points at B');
    gw.signal('SIGTERM');
    assert.equal(await gw.exited, 0);
  });

  test('a setting bound at start is reported as needing a restart, not half-applied', async () => {
    writeFileSync(file, `services:\n  one:\n    base_url: ${a.url}\n`);
    const gw = await startCliGateway(['serve', '--config', file], env);
    inProcess.push(gw);
    writeFileSync(file, `strategies_dir: ${join(dir, 'plugins')}\nservices:\n  one:\n    base_url: ${a.url}\n`);
    const warned = gw.waitForLine((l) => l.event_type === 'config_restart_needed');
    gw.signal('SIGHUP');
    assert.deepEqual((await warned).keys, ['strategies_dir']);
    assert.equal(await (await fetch(`${gw.url}/services/one/`)).text(), 'A', 'still serving');
    gw.signal('SIGTERM');
    assert.equal(await gw.exited, 0);
  });
});
