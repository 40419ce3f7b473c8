#!/usr/bin/env node
// Transpiles src/ into dist/ (plain JS, same tree, dependencies left as imports) so `hestia` can
// start without tsx's loader: on Node 20 that loader runs in a second V8 isolate and costs
// ~30 MiB of RSS. npm runs this as `prepare` (on `npm ci` / `npm install`); nobody has to
// remember it: bin/hestia.mjs uses dist/ only while it matches src/ (see
// source-fingerprint.mjs) and runs the sources through tsx otherwise. A failed or impossible
// build is therefore never fatal: it says so and exits 0 — except with `--require` (npm's
// `prepack`), where a package without a complete dist/ must not be made: exit 1.
//
// dist/ mirrors src/ file by file (not one bundle) and gets a copy of every non-TypeScript file
// (the dashboard's assets), so code that finds files next to itself through
// `new URL('./assets/app.js', import.meta.url)` or `../../examples/…` finds the same files.
//
// The strategy-plugin contract (src/routing/types.ts, the package's `./strategy` export) holds
// types only; it is copied to dist/routing/types.d.ts so plugin authors get the types from an
// installed package, which ships dist/ but not src/.
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sourceFingerprint } from './source-fingerprint.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'src');
const dist = join(root, 'dist');
const required = process.argv.includes('--require');

/** Relative imports stay imports (one output file per source), `.ts` → `.js`. */
const keepRelativeImports = {
  name: 'keep-relative-imports',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) =>
      args.kind === 'entry-point' ? undefined : { path: args.path.replace(/\.ts$/, '.js'), external: true },
    );
  },
};

try {
  const fingerprint = sourceFingerprint(root);
  const { build } = await import('esbuild');
  rmSync(dist, { recursive: true, force: true });
  const entryPoints = [];
  for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath ?? entry.path, entry.name);
    if (file.endsWith('.ts') && !file.endsWith('.d.ts')) entryPoints.push(file);
    else if (!file.endsWith('.md')) {
      const to = join(dist, relative(src, file));
      mkdirSync(dirname(to), { recursive: true });
      cpSync(file, to);
    }
  }
  const t0 = performance.now();
  await build({
    entryPoints,
    outbase: src,
    outdir: dist,
    bundle: true,
    plugins: [keepRelativeImports],
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    // As tsx does: function and class names stay what the sources say (logs, error names).
    keepNames: true,
    logLevel: 'warning',
  });
  const typesOut = join(dist, 'routing', 'types.js');
  if (readFileSync(typesOut, 'utf8').trim() !== '') {
    throw new Error('src/routing/types.ts must hold types only (it is shipped as a .d.ts)');
  }
  cpSync(join(src, 'routing', 'types.ts'), join(dist, 'routing', 'types.d.ts'));
  // Written last: a dist/ without it is never used.
  writeFileSync(
    join(dist, 'build-info.json'),
    `${JSON.stringify({ fingerprint, builtAt: new Date().toISOString() })}\n`,
  );
  process.stderr.write(
    `hestia: built dist/ (${entryPoints.length} files) in ${Math.round(performance.now() - t0)} ms\n`,
  );
} catch (err) {
  rmSync(dist, { recursive: true, force: true });
  const why = err instanceof Error ? err.message : String(err);
  if (required) {
    process.stderr.write(`hestia: dist/ build failed (${why}); not packing a package without it\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`hestia: no dist/ build (${why}); \`hestia\` will run the TypeScript sources through tsx\n`);
  }
}
