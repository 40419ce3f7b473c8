/**
 * The gateway process sets V8's old-generation growing factor (src/cli/heap-tuning.ts) unless
 * node's own command line sets it. Real `hestia serve` processes; the decision is read from
 * the debug log line each one writes at start.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { HEAP_GROWING_PERCENT, tuneHeapForProxying } from '../../src/cli/heap-tuning.ts';
import { spawnGateway } from '../helpers/child-gateway.ts';

const dir = mkdtempSync(join(tmpdir(), 'hestia-heap-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const file = join(dir, 'ok.yml');
writeFileSync(file, 'services:\n  a:\n    base_url: http://127.0.0.1:9\n');
const env = (name: string) => ({
  HESTIA_CONFIG_PATH: undefined,
  HESTIA_DB_PATH: join(dir, `${name}.db`),
  HESTIA_LOG_LEVEL: 'debug',
});

test('a flag on node’s command line, in either spelling, is kept', () => {
  assert.equal(tuneHeapForProxying(['--heap-growing-percent=25']), 'kept');
  assert.equal(tuneHeapForProxying(['--max-old-space-size=512', '--heap_growing_percent', '0']), 'kept');
});

test('`hestia serve` sets the growing factor; node’s own --heap-growing-percent wins', async (t) => {
  const plain = await spawnGateway(['serve', '--config', file], env('plain'));
  t.after(() => plain.kill());
  const set = await plain.waitForLine((l) => l.event_type === 'heap_tuning', 10_000);
  assert.equal(set.heap_growing_percent, HEAP_GROWING_PERCENT);

  const flagged = await spawnGateway(['serve', '--config', file], env('flagged'), ['--heap-growing-percent=25']);
  t.after(() => flagged.kill());
  const kept = await flagged.waitForLine((l) => l.event_type === 'heap_tuning', 10_000);
  assert.equal(kept.heap_growing_percent, 'from the command line');
  for (const gw of [plain, flagged]) {
    gw.child.kill('SIGTERM');
    assert.equal(await gw.exited, 0);
  }
});
