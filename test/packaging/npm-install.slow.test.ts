/**
 * The npm package as a user gets it: `npm pack` (prepack builds dist/), then `npm install -g` of
 * the tarball into a temporary prefix, then the installed `hestia` command: `check-config` on
 * an example, and `serve` until /healthz answers and the bundled demo service cold-starts, then
 * SIGTERM by PID and exit 0. The installed package has no src/ and no tsx, so this also proves
 * the command runs the prebuilt dist/.
 *
 * Needs npm and the npm registry (the dependencies are installed from it). better-sqlite3's
 * native binary: this machine cannot download its prebuilt binaries (they are not on the npm
 * registry), and compiling it takes longer than the test runner gives one file, so the test hands
 * prebuild-install the binary the checkout's `npm ci` already compiled for this Node, as a local
 * prebuild (`npm_config_better_sqlite3_local_prebuilds`, the mechanism docs/install.md describes
 * for offline installs); the compile-from-source path is what `npm ci` and the container build
 * run. In CI
 * (CI=true or HESTIA_REQUIRE_BACKENDS=1) a missing prerequisite fails the test; elsewhere it
 * skips. The pack runs in a copy of the tree, so the checkout's dist/ is never rebuilt under
 * tests that run in parallel.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const repo = fileURLToPath(new URL('../..', import.meta.url));
const required = process.env.CI === 'true' || process.env.HESTIA_REQUIRE_BACKENDS === '1';
const sqliteDir = join(repo, 'node_modules', 'better-sqlite3');
const sqliteBinary = join(sqliteDir, 'build', 'Release', 'better_sqlite3.node');
const work = mkdtempSync(join(tmpdir(), 'hestia-pack-'));
let server: ChildProcess | undefined;
after(() => {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

/** Why the test cannot run here, or undefined when it can. */
function missingPrerequisite(): string | undefined {
  for (const [cmd, args] of [
    ['npm', ['--version']],
    ['tar', ['--version']],
  ] as const) {
    const r = spawnSync(cmd, args, { stdio: 'ignore' });
    if (r.error || r.status !== 0) return `\`${cmd}\` is not available`;
  }
  if (!existsSync(join(repo, 'node_modules', 'esbuild'))) return 'node_modules has no esbuild (run `npm ci`)';
  if (!existsSync(sqliteBinary)) return `no ${sqliteBinary} (run \`npm ci\`)`;
  return undefined;
}

/** A port that was free a moment ago (for the demo service, whose default port is fixed). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves with the first stdout JSON log line of `child` that matches. */
function logLine(child: ChildProcess, pred: (l: Record<string, unknown>) => boolean) {
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    let buf = '';
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const line = JSON.parse(text) as Record<string, unknown>;
          if (pred(line)) resolve(line);
        } catch {
          // not a log line
        }
      }
    });
    child.on('exit', (code) => reject(new Error(`hestia exited (${code}) first; stderr: ${stderr.slice(-800)}`)));
  });
}

test('npm pack + npm install -g of the tarball gives a working hestia command', async (t) => {
  const missing = missingPrerequisite();
  if (missing) {
    if (required) assert.fail(`packaging test cannot run: ${missing}`);
    t.skip(missing);
    return;
  }

  // A copy of the tree (the checkout's own node_modules, linked), where npm pack builds dist/.
  const tree = join(work, 'tree');
  const skip = new Set(['node_modules', 'dist', 'data', '.git', 'test', 'bench']);
  cpSync(repo, tree, {
    recursive: true,
    filter: (src) => {
      const rel = relative(repo, src);
      return !skip.has(rel.split(/[\\/]/)[0] ?? '') && !/^hestia-gateway-.*\.tgz$/.test(rel);
    },
  });
  symlinkSync(join(repo, 'node_modules'), join(tree, 'node_modules'));
  const packed = await run('npm', ['pack', '--json', '--pack-destination', work], {
    cwd: tree,
    maxBuffer: 16 * 1024 * 1024,
  });
  // Lifecycle scripts may print before the JSON array.
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('\n[') + 1)) as Array<{
    filename: string;
    size: number;
    entryCount: number;
    files: Array<{ path: string }>;
  }>;
  assert.ok(info);
  const paths = info.files.map((f) => f.path);
  t.diagnostic(`tarball ${info.filename}: ${info.size} bytes, ${info.entryCount} files`);
  for (const p of [
    'bin/hestia.mjs',
    'dist/cli/main.js',
    'dist/build-info.json',
    'dist/routing/types.d.ts',
    'README.md',
    'LICENSE',
  ])
    assert.ok(paths.includes(p), `${p} is in the package`);
  assert.ok(paths.includes('examples/demo-service.mjs'));
  assert.ok(paths.some((p) => p.startsWith('docs/')));
  for (const dir of ['src/', 'test/', 'bench/', 'node_modules/'])
    assert.equal(paths.filter((p) => p.startsWith(dir)).length, 0, `nothing under ${dir} is packed`);

  // The local prebuild: named as prebuild-install looks for it, holding build/Release/*.node.
  const prebuilds = join(work, 'prebuilds');
  mkdirSync(prebuilds);
  const { version } = JSON.parse(readFileSync(join(sqliteDir, 'package.json'), 'utf8')) as { version: string };
  const prebuild = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  await run('tar', ['-czf', join(prebuilds, prebuild), '-C', sqliteDir, 'build/Release/better_sqlite3.node']);

  const prefix = join(work, 'prefix');
  const installArgs = ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline'];
  installArgs.push('--allow-scripts=better-sqlite3,ssh2,cpu-features', join(work, info.filename));
  await run('npm', installArgs, {
    cwd: work,
    env: { ...process.env, npm_config_better_sqlite3_local_prebuilds: prebuilds },
    maxBuffer: 16 * 1024 * 1024,
  });
  const installed = join(prefix, 'lib', 'node_modules', 'hestia-gateway');
  const hestia = join(prefix, 'bin', 'hestia');
  assert.ok(existsSync(hestia), 'the hestia command is installed');
  assert.equal(existsSync(join(installed, 'src')), false, 'no TypeScript sources installed');
  assert.equal(existsSync(join(installed, 'node_modules', 'tsx')), false, 'no tsx installed');
  assert.equal(existsSync(join(installed, 'node_modules', 'typescript')), false, 'no TypeScript installed');

  // A clean environment: none of the caller's HESTIA_* settings.
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('HESTIA_')) env[k] = v;
  const home = join(work, 'home');
  mkdirSync(home);

  const checked = await run(hestia, ['check-config', join(installed, 'examples', 'machines.yml')], { cwd: home, env });
  assert.match(checked.stdout, /services:/);

  const demoPort = await freePort();
  server = spawn(hestia, ['serve'], {
    cwd: home,
    env: {
      ...env,
      HESTIA_HOST: '127.0.0.1',
      HESTIA_PORT: '0',
      HESTIA_DB_PATH: join(home, 'state', 'hestia.db'),
      DEMO_BASE_URL: `http://127.0.0.1:${demoPort}`,
      DEMO_HEALTH_URL: `http://127.0.0.1:${demoPort}/health`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => server?.on('exit', (code) => resolve(code)));
  const listening = await logLine(server, (l) => l.event_type === 'listening');
  const url = String(listening.url);
  const health = await fetch(`${url}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok' });
  // The built-in demo service is examples/demo-service.mjs, found relative to dist/: a cold start.
  const demo = await fetch(`${url}/services/demo/hello`);
  assert.equal(demo.status, 200);
  assert.equal(((await demo.json()) as { path: string }).path, '/hello');
  assert.ok(existsSync(join(home, 'state', 'hestia.db')));

  const pid = server.pid;
  assert.ok(pid);
  process.kill(pid, 'SIGTERM');
  assert.equal(await exited, 0);
  // Nothing but the database was written: no config, no ./data next to the working directory.
  assert.deepEqual(readdirSync(home).sort(), ['state']);
});
