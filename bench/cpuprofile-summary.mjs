#!/usr/bin/env node
/**
 * Summarise a .cpuprofile: `node bench/cpuprofile-summary.mjs FILE.cpuprofile [--top N] [--json]`.
 * Prints the areas (Hestia src/, undici, node http, GC, ...), the top functions by self time
 * and Hestia's own functions by inclusive time, as markdown.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { profileMarkdown, summariseProfile } from './lib/cpuprofile.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '20' }, json: { type: 'boolean', default: false } },
});
if (positionals.length !== 1) {
  process.stderr.write('usage: node bench/cpuprofile-summary.mjs FILE.cpuprofile [--top N] [--json]\n');
  process.exit(2);
}
const top = Number(values.top);
const summary = summariseProfile(JSON.parse(readFileSync(positionals[0], 'utf8')), { top });
process.stdout.write(values.json ? `${JSON.stringify(summary, null, 2)}\n` : `${profileMarkdown(summary, { top })}\n`);
