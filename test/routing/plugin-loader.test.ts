import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { createLogger } from '../../src/observability/logger.ts';
import { loadStrategyPlugins, type PluginLoadResult } from '../../src/routing/plugin-loader.ts';
import { StrategyRegistry } from '../../src/routing/strategy-registry.ts';
import { snap, view } from './helpers.ts';

const PLUGINS: Record<string, string> = {
  'a-good.mjs': `export function register(api) {
    api.log.info('hello from good');
    return { name: 'sticky', version: '2.1.0', features: ['custom'],
      select: (view, snapshot) => ({ url: snapshot.baseUrl, reason: 'sticky ' + view.method }) };
  }`,
  'b-default-export.js': `export default async function () {
    return [{ name: 'async_one', version: '1', features: [], select: (v, s) => ({ url: s.baseUrl, reason: 'a' }) }];
  }`,
  'c-throws-on-import.mjs': `throw new Error('cannot even load');`,
  'd-syntax-error.mjs': `export function register( {`,
  'e-no-export.mjs': `export const strategy = { name: 'orphan' };`,
  'f-register-throws.mjs': `export function register() { throw new Error('register exploded'); }`,
  'g-garbage.mjs': `export function register() { return 42; }`,
  'h-half-good.mjs': `export function register() {
    return [
      { name: 'half_good', version: '1', features: [], select: (v, s) => ({ url: s.baseUrl, reason: 'ok' }) },
      { name: 'no select', version: '1', features: [] },
      { name: 'load_balancer', version: '9', features: [], select: () => null },
    ];
  }`,
  'i-hangs.mjs': `await new Promise(() => {}); export function register() {}`,
  'j-returns-nothing.mjs': `export function register() {}`,
  'k-class.mjs': `class Sticky { name = 'class_based'; version = '1'; features = [];
    constructor() { this.target = 'http://from-this:1'; }
    select() { return { url: this.target, reason: 'uses this' }; } }
  export function register() { return new Sticky(); }`,
  'notes.txt': 'not a plugin',
  '.hidden.mjs': `throw new Error('dotfiles are not loaded');`,
};

let dir: string;
let results: PluginLoadResult[];
let registry: StrategyRegistry;
const lines: Array<Record<string, unknown>> = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hestia-plugins-'));
  for (const [name, text] of Object.entries(PLUGINS)) await writeFile(join(dir, name), text);
  await mkdir(join(dir, 'subdir.mjs'));
  const log = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk, _e, cb) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    }),
  });
  registry = new StrategyRegistry();
  // A short timeout keeps the never-settling plugin from holding the test for 5 s; what is
  // asserted is that it is skipped, not how long that took.
  results = await loadStrategyPlugins(dir, registry, { log, timeoutMs: 300 });
});
after(() => rm(dir, { recursive: true, force: true }));

function resultFor(name: string): PluginLoadResult {
  const r = results.find((x) => x.file === join(dir, name));
  assert.ok(r, `no result for ${name}`);
  return r;
}

test('good plugins register through `register` or a default export, sync or async', () => {
  assert.deepEqual(resultFor('a-good.mjs'), { file: join(dir, 'a-good.mjs'), registered: ['sticky'], problems: [] });
  assert.deepEqual(resultFor('b-default-export.js').registered, ['async_one']);
  const sticky = registry.get('sticky');
  assert.equal(sticky?.source, join(dir, 'a-good.mjs'));
  assert.deepEqual(sticky?.strategy.select(view(), snap([], 'http://b:1'), undefined as never, undefined), {
    url: 'http://b:1',
    reason: 'sticky POST',
  });
  assert.ok(lines.some((l) => l.msg === 'hello from good' && l.plugin === join(dir, 'a-good.mjs')));
});

test('a strategy written as a class keeps its `this` after registration', () => {
  const d = registry.get('class_based')?.strategy.select(view(), snap([]), undefined as never, undefined);
  assert.equal(d?.url, 'http://from-this:1');
});

for (const [file, pattern] of [
  ['c-throws-on-import.mjs', /failed to load: cannot even load/],
  ['d-syntax-error.mjs', /failed to load/],
  ['e-no-export.mjs', /exports no register function/],
  ['f-register-throws.mjs', /register threw: register exploded/],
  ['g-garbage.mjs', /expected a strategy object, got number 42/],
  ['i-hangs.mjs', /import did not finish within 300 ms/],
  ['j-returns-nothing.mjs', /register returned undefined/],
] as Array<[string, RegExp]>) {
  test(`${file} is skipped with a warning naming the file and the problem`, () => {
    const r = resultFor(file);
    assert.deepEqual(r.registered, []);
    assert.equal(r.problems.length, 1);
    assert.match(r.problems[0] ?? '', pattern);
    const warn = lines.find((l) => l.event_type === 'strategy_plugin_skipped' && l.file === join(dir, file));
    assert.equal(warn?.level, 'warn');
    assert.match(String(warn?.msg), new RegExp(file.replace('.', '\\.')));
  });
}

test('a plugin returning several strategies keeps the valid ones; a built-in name cannot be taken', () => {
  const r = resultFor('h-half-good.mjs');
  assert.deepEqual(r.registered, ['half_good']);
  assert.equal(r.problems.length, 2);
  assert.match(r.problems[0] ?? '', /name must be/);
  assert.match(r.problems[1] ?? '', /'load_balancer' is already registered \(built in\)/);
  assert.equal(registry.get('load_balancer')?.source, 'builtin');
});

test('only .js/.mjs files that are not dotfiles or directories are loaded', () => {
  const files = results.map((r) => r.file.slice(dir.length + 1)).sort();
  assert.deepEqual(
    files,
    Object.keys(PLUGINS)
      .filter((n) => /^[^.].*\.m?js$/.test(n))
      .sort(),
  );
});

test('a missing default directory is quiet; a missing configured one is a warning; neither throws', async () => {
  const local: Array<Record<string, unknown>> = [];
  const log = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk, _e, cb) {
        local.push(JSON.parse(String(chunk)));
        cb();
      },
    }),
  });
  const missing = join(dir, 'does-not-exist');
  assert.deepEqual(await loadStrategyPlugins(missing, new StrategyRegistry(), { log }), []);
  assert.equal(local.at(-1)?.level, 'debug');
  assert.deepEqual(await loadStrategyPlugins(missing, new StrategyRegistry(), { log, explicit: true }), []);
  assert.equal(local.at(-1)?.level, 'warn');
});
