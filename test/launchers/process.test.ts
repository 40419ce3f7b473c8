/**
 * The `process` launcher on its own: argv vs shell, template expansion, env/cwd, output
 * logging, group stop with SIGKILL escalation, /proc-verified adoption, and no child left
 * behind when the gateway process dies of an uncaught error.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { ProcessLauncherConfig } from '../../src/config/schema.ts';
import { processLauncherSchema } from '../../src/config/schema.ts';
import { trackedGroups } from '../../src/launchers/process/children.ts';
import { ProcessLauncher, type ProcessPersist } from '../../src/launchers/process/index.ts';
import { type LaunchContext, LaunchError, type LaunchHandle } from '../../src/launchers/types.ts';
import { captureLogger } from '../helpers/events.ts';
import { configFrom } from '../helpers/gateway.ts';
import { FIXTURE, fixtureArgv, isAlive, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';

const tmp = tempDir();
const started: Array<{ launcher: ProcessLauncher; handle: LaunchHandle; ctx: LaunchContext }> = [];
after(async () => {
  for (const s of started) await s.launcher.stop(s.handle, s.ctx).catch(() => {});
  tmp.cleanup();
});

function launcher(cfg: Record<string, unknown>) {
  const parsed: ProcessLauncherConfig = processLauncherSchema.parse({ type: 'process', ...cfg });
  const { log: base, lines } = captureLogger();
  // As the registry does: the launcher's logger is bound to its service.
  const log = base.child({ service_id: 'svc' });
  const l = new ProcessLauncher(parsed, { serviceId: 'svc', config: configFrom({ services: {} }), log });
  return { l, lines, log };
}

function ctxFor(port: number, log: LaunchContext['log']): LaunchContext {
  return {
    serviceId: 'svc',
    machine: { id: 'local', host: '127.0.0.1' },
    vars: { host: '127.0.0.1', machine: 'local', port: String(port), service: 'svc' },
    log,
    signal: new AbortController().signal,
  };
}

async function info(
  port: number,
  env?: string,
): Promise<{ pid: number; cwd: string; argv: string[]; env: string | null }> {
  await waitFor(
    async () => {
      try {
        return (await fetch(`http://127.0.0.1:${port}/health`)).ok;
      } catch {
        return false;
      }
    },
    { message: `fixture on ${port}` },
  );
  const res = await fetch(`http://127.0.0.1:${port}/info${env ? `?env=${env}` : ''}`);
  return (await res.json()) as { pid: number; cwd: string; argv: string[]; env: string | null };
}

async function launch(cfg: Record<string, unknown>) {
  const port = await freePort();
  const { l, lines, log } = launcher(cfg);
  const ctx = ctxFor(port, log);
  const handle = await l.start(ctx);
  started.push({ launcher: l, handle, ctx });
  return { l, lines, ctx, handle, port };
}

test('an argv command runs without a shell, with {port}/{service} expanded, env merged and cwd set', async () => {
  const { port, handle } = await launch({
    command: fixtureArgv('--stdout', 'a b;$HOME'),
    env: { HESTIA_TEST_VAR: '{service}-on-{port}' },
    cwd: tmp.dir,
  });
  const i = await info(port, 'HESTIA_TEST_VAR');
  assert.equal(i.pid, (handle.persist as unknown as ProcessPersist).pid);
  assert.deepEqual(i.argv, ['--port', String(port), '--stdout', 'a b;$HOME'], 'no shell touched the argument');
  assert.equal(i.env, `svc-on-${port}`);
  assert.equal(i.cwd, tmp.dir);
  const i2 = await info(port, 'PATH');
  assert.equal(i2.env, process.env.PATH, 'the gateway environment is inherited');
});

test('a string command runs under /bin/sh -c, and its output lines are logged with the service id', async () => {
  const { port, lines } = await launch({
    command: `exec "${process.execPath}" "${FIXTURE}" --port {port} --stdout "hello from {service}" --stderr oops`,
  });
  await info(port);
  await waitFor(() => lines().some((l) => l.event_type === 'service_output' && l.msg === 'hello from svc'), {
    message: 'stdout line',
  });
  const out = lines().filter((l) => l.event_type === 'service_output');
  assert.ok(out.every((l) => l.service_id === 'svc'));
  assert.ok(out.some((l) => l.stream === 'stderr' && l.msg === 'oops'));
});

test('stop signals the whole process group: the grandchild goes too', async () => {
  const gpid = tmp.path('grandchild.pid');
  const { l, ctx, handle, port } = await launch({ command: fixtureArgv('--grandchild-pid', gpid) });
  await info(port);
  const grandchild = Number(readFileSync(gpid, 'utf8'));
  const child = (handle.persist as unknown as ProcessPersist).pid;
  assert.ok(isAlive(grandchild) && isAlive(child));
  await l.stop(handle, ctx);
  assert.equal(isAlive(child), false);
  assert.equal(isAlive(grandchild), false);
  assert.equal(trackedGroups().includes(child), false);
  const exit = await handle.exited;
  assert.ok(exit);
});

test('a child that ignores stop_signal is SIGKILLed after stop_timeout_ms', async () => {
  const { l, ctx, handle, port } = await launch({ command: fixtureArgv('--ignore-sigterm'), stop_timeout_ms: 200 });
  await info(port);
  await l.stop(handle, ctx);
  const exit = await handle.exited;
  assert.equal(exit?.signal, 'SIGKILL');
  assert.match(exit?.reason ?? '', /killed by SIGKILL/);
});

test('stop_signal is configurable (SIGINT)', async () => {
  const { l, ctx, handle, port } = await launch({ command: fixtureArgv(), stop_signal: 'SIGINT' });
  await info(port);
  await l.stop(handle, ctx);
  const exit = await handle.exited;
  assert.equal(exit?.signal, 'SIGINT');
});

test('a command that cannot run fails the start with a LaunchError naming it', async () => {
  const { l, log } = launcher({ command: ['/nonexistent/program', '--x'] });
  await assert.rejects(l.start(ctxFor(1, log)), (err: unknown) => {
    assert.ok(err instanceof LaunchError);
    assert.match(err.message, /\/nonexistent\/program.*ENOENT/);
    return true;
  });
});

test('a missing cwd is named as such; an unknown stop_signal falls back to SIGTERM with a warning', async () => {
  const { l, log } = launcher({ command: fixtureArgv(), cwd: '/nonexistent/dir' });
  await assert.rejects(l.start(ctxFor(1, log)), /working directory "\/nonexistent\/dir" does not exist/);
  const bad = launcher({ command: fixtureArgv(), stop_signal: 'SIGNOPE' });
  assert.ok(bad.lines().some((line) => line.event_type === 'config_warning' && /SIGNOPE/.test(String(line.msg))));
  const port = await freePort();
  const ctx = ctxFor(port, bad.log);
  const handle = await bad.l.start(ctx);
  await info(port);
  await bad.l.stop(handle, ctx);
  assert.equal((await handle.exited)?.code, 0, 'stopped by SIGTERM (the fixture exits 0 on it)');
});

test('adopt accepts only the very same process (pid, start time, argv)', async () => {
  const { l, ctx, handle, port } = await launch({ command: fixtureArgv() });
  await info(port);
  const persist = handle.persist as unknown as ProcessPersist;
  const { l: other } = launcher({ command: fixtureArgv() });
  assert.equal(await other.adopt({ ...persist, startTime: '1' }, ctx), null, 'start time differs: pid reuse');
  assert.equal(await other.adopt({ ...persist, argv: ['/bin/other'] }, ctx), null, 'argv differs');
  assert.equal(await other.adopt({ ...persist, pid: 999_999_999 }, ctx), null, 'no such pid');
  const adopted = await other.adopt({ ...persist }, ctx);
  assert.ok(adopted);
  // The adopted handle stops the group and notices the exit (the child is not ours to wait on).
  await other.stop(adopted, ctx);
  assert.equal(isAlive(persist.pid), false);
  const exit = await adopted.exited;
  assert.match(exit?.reason ?? '', /ended/);
  await l.stop(handle, ctx);
});

test('when the gateway process dies of an uncaught error, its children die with it', async () => {
  const pidFile = tmp.path('fatal.pid');
  const port = await freePort();
  const script = fileURLToPath(new URL('../fixtures/lifecycle-fatal-parent.ts', import.meta.url));
  const parent = spawn(process.execPath, ['--import', 'tsx', script, String(port), pidFile], { stdio: 'pipe' });
  let stderr = '';
  parent.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const code = await new Promise<number | null>((resolve) => parent.on('exit', (c) => resolve(c)));
  assert.notEqual(code, 0, 'the parent died of its error');
  assert.match(stderr, /deliberate fatal error/);
  const child = Number(readFileSync(pidFile, 'utf8'));
  assert.ok(child > 0);
  await waitFor(() => !isAlive(child), { message: 'the orphan-to-be to be dead', timeoutMs: 5_000 });
});

test('a child that dies of EADDRINUSE says so: the reason keeps the error line, not the middle of the stack', async () => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  after(() => holder.close());
  const port = (holder.address() as AddressInfo).port;
  const { l, log } = launcher({
    command: [
      process.execPath,
      '-e',
      "require('node:net').createServer().listen(Number(process.argv.at(-1)), '127.0.0.1')",
      '{port}',
    ],
  });
  const ctx = ctxFor(port, log);
  const handle = await l.start(ctx);
  started.push({ launcher: l, handle, ctx });
  const exit = await handle.exited;
  assert.ok(exit);
  assert.match(
    exit.reason,
    new RegExp(`^exited with code 1: Error: listen EADDRINUSE: address already in use 127\\.0\\.0\\.1:${port}\\n…\\n`),
  );
  assert.doesNotMatch(exit.reason, /^\s+at /m, 'no stack frames');
  assert.match(exit.reason, /Node\.js v\d+/, 'the tail is kept');
});
