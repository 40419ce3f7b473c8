#!/usr/bin/env node
// Runs every test/**/*.test.ts with node:test through tsx. Node 20's --test does not expand
// globs itself, so the files are listed here. `--fast` skips files named *.slow.test.ts.
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const fast = args.includes('--fast');
const filters = args.filter((a) => !a.startsWith('--'));
const files = readdirSync('test', { recursive: true })
  .map(String)
  .filter((f) => f.endsWith('.test.ts'))
  .filter((f) => !(fast && f.endsWith('.slow.test.ts')))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort()
  .map((f) => join('test', f));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...files],
  { stdio: 'inherit' },
);
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
