#!/usr/bin/env node
// Runs every test/**/*.test.ts with node:test through tsx. Node 20's --test does not expand
// globs itself, so the files are listed here. `--fast` skips files named *.slow.test.ts.
//
// - Order: the *.slow.test.ts files first, so the longest files start early and do not finish
//   alone at the end of the run (node starts files in the order given).
// - Concurrency: the tests are mostly waiting on sockets and child processes, not on the CPU, so
//   on an idle machine more files run at once than there are cores; on a busy one, fewer
//   (see below; HESTIA_TEST_CONCURRENCY overrides).
// - Timeout: 300 s per test (and per file): the packaging test packs and installs the package
//   (~30 s idle, over 120 s on a loaded machine); a hung test still ends the run.
// - Skips: node's closing lines (`# tests`, `# pass`, `# fail`, `# skipped`, …) are node's own and
//   printed unchanged. Node 20 does not count a suite skipped with `describe(…, {skip})` in
//   `# skipped`; missing back ends go through test/helpers/backends.ts `requireOrSkip`, which
//   adds a counted skipped test (or, with CI=true / HESTIA_REQUIRE_BACKENDS=1, a failing one).
//   Should any other whole suite be skipped, the runner names it after node's summary.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const fast = args.includes('--fast');
const filters = args.filter((a) => !a.startsWith('--'));
const slowFirst = (f) => (f.endsWith('.slow.test.ts') ? 0 : 1);
// A plain walk rather than readdirSync's `recursive` option, whose Node 20 implementation was
// seen listing fewer files now and then (a test file silently not run).
const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name).slice('test/'.length)],
  );
const files = walk('test')
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => !(fast && f.endsWith('.slow.test.ts')))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort((a, b) => slowFirst(a) - slowFirst(b) || a.localeCompare(b))
  .map((f) => join('test', f));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// Files at once: twice the cores when the machine is otherwise idle (CI), down to the number of
// cores as its load average says other work is running: timing-sensitive tests (rate-limit
// windows, deadlines, a child's start) failed at 4-8 files on 2 cores with a load of ~10-14
// from elsewhere, and passed at 2.
const cores = availableParallelism();
const idleCores = Math.max(0, cores - loadavg()[0]);
const concurrency =
  Number(process.env.HESTIA_TEST_CONCURRENCY) || Math.min(cores * 2, Math.max(2, Math.round(cores + idleCores)));
process.stderr.write(`run-tests: ${files.length} files, ${concurrency} at once\n`);
// On a terminal node prints its spec reporter straight to it; otherwise (CI, pipes) its TAP
// passes through here line by line, unchanged, so skipped suites can be noticed.
const tty = process.stdout.isTTY === true;
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...files],
  { stdio: ['inherit', tty ? 'inherit' : 'pipe', 'inherit'] },
);

const skippedSuites = [];
if (!tty) {
  let buf = '';
  let pendingSkip = null;
  const onLine = (line) => {
    const m = /^\s*ok \d+ - (.*) # SKIP(?: (.*))?$/.exec(line);
    if (m) pendingSkip = { name: m[1], reason: m[2] ?? '' };
    else if (pendingSkip && /^\s*type: 'suite'$/.test(line)) {
      skippedSuites.push(pendingSkip);
      pendingSkip = null;
    } else if (/^\s*\.\.\.$/.test(line)) pendingSkip = null;
  };
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk);
    buf += chunk.toString();
    let nl = buf.indexOf('\n');
    while (nl >= 0) {
      onLine(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
      nl = buf.indexOf('\n');
    }
  });
}

child.on('close', (code, signal) => {
  if (skippedSuites.length > 0) {
    process.stdout.write(
      `# (runner) ${skippedSuites.length} whole suite(s) skipped, their tests not in '# skipped' above:\n` +
        skippedSuites.map((s) => `#   ${s.name}${s.reason ? ` — ${s.reason}` : ''}\n`).join(''),
    );
  }
  process.exit(code ?? (signal ? 1 : 0));
});
