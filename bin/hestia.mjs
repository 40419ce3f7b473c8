#!/usr/bin/env node
// The `hestia` command. The sources are TypeScript. When dist/ holds a bundle built from exactly
// the sources in src/ (npm's `prepare` builds it on `npm ci`; scripts/build.mjs), that bundle
// runs: it saves the ~30-40 MiB tsx's loader costs. Otherwise — a source was edited since, or
// there is no build — the sources run through tsx's ESM hooks, so a fresh clone and every edit
// run with no build step to remember. HESTIA_FROM_SOURCE=1 forces the sources.
import { existsSync, readFileSync } from 'node:fs';
import { sourceFingerprint } from '../scripts/source-fingerprint.mjs';

const root = new URL('..', import.meta.url);

function bundleIsCurrent() {
  if (process.env.HESTIA_FROM_SOURCE === '1') return false;
  try {
    const info = JSON.parse(readFileSync(new URL('dist/build-info.json', root), 'utf8'));
    // An installed package (npm pack's `files`) ships dist/ without src/: the bundle is all.
    if (!existsSync(new URL('src', root))) return true;
    return info.fingerprint === sourceFingerprint(new URL('.', root).pathname);
  } catch {
    return false;
  }
}

let mod;
if (bundleIsCurrent()) {
  mod = await import('../dist/cli/main.js');
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import('../src/cli/main.ts');
}
const code = await mod.main(process.argv.slice(2));
if (typeof code === 'number') process.exitCode = code;
