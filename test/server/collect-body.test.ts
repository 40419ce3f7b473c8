import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { collectCapped } from '../../src/server/collect-body.ts';

test('a body within the cap is collected whole', async () => {
  const r = await collectCapped(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), 4);
  assert.deepEqual(r, { ok: true, bytes: Buffer.from('abcd') });
});

test('crossing the cap stops reading and destroys the source', async () => {
  let produced = 0;
  const endless = new Readable({
    read() {
      produced++;
      this.push(Buffer.alloc(1024, 1));
    },
  });
  const r = await collectCapped(endless, 10_000);
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.receivedBytes > 10_000 && r.receivedBytes <= 10_000 + 1024);
  assert.equal(endless.destroyed, true);
  assert.ok(produced < 100);
});

test('cap 0 means no cap', async () => {
  const r = await collectCapped(Readable.from([Buffer.alloc(5000)]), 0);
  assert.equal(r.ok && r.bytes.length, 5000);
});

test('a source error rejects', async () => {
  const broken = new Readable({
    read() {
      this.destroy(new Error('upstream reset'));
    },
  });
  await assert.rejects(collectCapped(broken, 100), /upstream reset/);
});
