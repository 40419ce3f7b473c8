/**
 * bin/hestia.mjs runs the dist/ bundle only while src/ has the fingerprint the bundle was built
 * from (scripts/source-fingerprint.mjs): any edit, addition or removal must change it.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { sourceFingerprint } from '../../scripts/source-fingerprint.mjs';

const root = mkdtempSync(join(tmpdir(), 'hestia-fingerprint-'));
after(() => rmSync(root, { recursive: true, force: true }));
mkdirSync(join(root, 'src/proxy'), { recursive: true });
const a = join(root, 'src/main.ts');
const b = join(root, 'src/proxy/handler.ts');
writeFileSync(a, 'export const a = 1;\n');
writeFileSync(b, 'export const b = 1;\n');
const past = new Date(Date.now() - 60_000);
utimesSync(a, past, past);
utimesSync(b, past, past);

test('the fingerprint is stable while nothing changes', () => {
  assert.equal(sourceFingerprint(root), sourceFingerprint(root));
});

test('an edit changes it, even one that keeps the size and puts the mtime back in the past', () => {
  const before = sourceFingerprint(root);
  writeFileSync(b, 'export const b = 2;\n');
  assert.notEqual(sourceFingerprint(root), before);
  const older = new Date(Date.now() - 120_000);
  utimesSync(b, older, older);
  assert.notEqual(sourceFingerprint(root), before);
});

test('adding or removing a source file changes it', () => {
  const before = sourceFingerprint(root);
  const c = join(root, 'src/proxy/new.ts');
  writeFileSync(c, 'export {};\n');
  const added = sourceFingerprint(root);
  assert.notEqual(added, before);
  unlinkSync(c);
  assert.equal(sourceFingerprint(root), before);
});
