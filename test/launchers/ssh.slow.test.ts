/**
 * The ssh launcher against a real OpenSSH server on 127.0.0.1:2222 (scripts/ci/setup-sshd.sh).
 * The "remote" machine is this machine, so the tests can check the launched server's port
 * and clean up remote processes by PID.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { sshLauncherSchema } from '../../src/config/schema.ts';
import { createSshLauncher } from '../../src/launchers/ssh/index.ts';
import { LaunchError } from '../../src/launchers/types.ts';
import { sshTargetFor } from '../../src/remote/ssh/connection.ts';
import { runOnMachine, runSshCommand } from '../../src/remote/ssh/exec.ts';
import { fingerprintSha256 } from '../../src/remote/ssh/host-key.ts';
import { CI_DIR, requireOrSkip, SSH_DIR, sshdUnavailable } from '../helpers/backends.ts';
import { askServer, killPid, LAUNCHED_SERVER, launchCtx, testConfig } from '../helpers/launchers.ts';
import { freePort, portOpen } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';

const skip = requireOrSkip('sshd on 127.0.0.1:2222', await sshdUnavailable());
const RUN_DIR = `${CI_DIR}/ssh/test-runs-${process.pid}`;
const startedPids = new Set<number>();

function machines(ssh: Record<string, unknown> = {}) {
  return testConfig({
    machines: {
      box: {
        host: '127.0.0.1',
        ssh: {
          user: 'root',
          port: 2222,
          identity_file: `${SSH_DIR}/client_key`,
          known_hosts: `${SSH_DIR}/known_hosts`,
          connect_timeout_ms: 5000,
          ...ssh,
        },
      },
    },
  });
}

function launcherFor(port: number, token: string, extra: Record<string, unknown> = {}, ssh?: Record<string, unknown>) {
  const pidFile = `${RUN_DIR}/srv-${port}.pid`;
  const cfg = sshLauncherSchema.parse({
    type: 'ssh',
    machine: 'box',
    // One simple backgrounded command with all three fds redirected (see exec.ts).
    command: `cd ${RUN_DIR} || exit 1; setsid nohup /usr/bin/node ${LAUNCHED_SERVER} {port} ${token} </dev/null >srv-{port}.log 2>&1 & echo $! > ${pidFile}`,
    stop_command: `kill $(cat ${pidFile}) && rm -f ${pidFile}`,
    is_running_command: `test -f ${pidFile} && kill -0 $(cat ${pidFile})`,
    timeout_ms: 20_000,
    ...extra,
  });
  return {
    launcher: createSshLauncher(cfg, { serviceId: 'svc', config: machines(ssh), log: launchCtx('svc').log }),
    pidFile,
  };
}

function rememberPid(pidFile: string) {
  try {
    startedPids.add(Number(readFileSync(pidFile, 'utf8').trim()));
  } catch {
    /* not started */
  }
}

describe('ssh launcher (real sshd on 127.0.0.1:2222)', { skip: skip ?? false }, () => {
  before(() => mkdirSync(RUN_DIR, { recursive: true }));
  after(() => {
    for (const pid of startedPids) killPid(pid);
    rmSync(RUN_DIR, { recursive: true, force: true });
  });

  test('start launches a detached server that answers; stop really stops it; start again works', async () => {
    const port = await freePort();
    const { launcher, pidFile } = launcherFor(port, 'tok-1');
    const ctx = launchCtx('svc', { machineId: 'box', port });

    const handle = await launcher.start(ctx);
    rememberPid(pidFile);
    assert.deepEqual(handle.persist, { machine: 'box' });
    await waitFor(() => portOpen(port), { message: `server on port ${port}` });
    const first = await askServer(port);
    assert.equal(first.token, 'tok-1');
    assert.equal(await launcher.isRunning!(ctx), true);

    await launcher.stop(handle, ctx);
    await waitFor(async () => !(await portOpen(port)), { message: `port ${port} closed` });
    assert.equal(await launcher.isRunning!(ctx), false);

    const again = await launcher.start(ctx);
    rememberPid(pidFile);
    await waitFor(() => portOpen(port), { message: `server on port ${port} again` });
    const second = await askServer(port);
    assert.equal(second.token, 'tok-1');
    assert.notEqual(second.pid, first.pid, 'a new process answers after the restart');
    assert.ok(await launcher.adopt!({ machine: 'box' }, ctx), 'a running service is adopted');
    await launcher.stop(again, ctx);
    await waitFor(async () => !(await portOpen(port)), { message: `port ${port} closed again` });
    assert.equal(await launcher.adopt!({ machine: 'box' }, ctx), null, 'a stopped service is not adopted');
  });

  test('with watch_interval_ms, a remote server that dies settles exited; our own stop settles it as stopped', async () => {
    const port = await freePort();
    const pidFile = `${RUN_DIR}/srv-${port}.pid`;
    // Zombie-proof liveness check: a dead server lingers as Z until PID 1 reaps it.
    const alive = `P=$(cat ${pidFile}) && [ -e /proc/$P ] && ! grep -q '^State:.*Z' /proc/$P/status`;
    const { launcher } = launcherFor(port, 'watched', { is_running_command: alive, watch_interval_ms: 200 });
    const ctx = launchCtx('svc', { machineId: 'box', port });

    const h = await launcher.start(ctx);
    rememberPid(pidFile);
    assert.ok(h.exited, 'a watched start has an exited promise');
    await waitFor(() => portOpen(port), { message: `server on port ${port}` });
    killPid(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL'); // the server dies behind Hestia's back
    const crash = await h.exited;
    assert.match(crash.reason, /is_running_command on box exited with code 1/);

    const h2 = await launcher.start(ctx);
    rememberPid(pidFile);
    await waitFor(() => portOpen(port), { message: `server on port ${port} again` });
    await launcher.stop(h2, ctx);
    assert.equal((await h2.exited!).reason, 'stopped');
    await launcher.close!();
  });

  test('a start command that exits 1 fails with the exit code and its stderr', async () => {
    const { launcher } = launcherFor(await freePort(), 'x', {
      command: 'echo "model file /models/llama.gguf not found" >&2; exit 1',
    });
    const err = await launcher.start(launchCtx('svc', { machineId: 'box' })).then(
      () => assert.fail('start should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof LaunchError);
    assert.match(err.message, /exited with code 1/);
    assert.match(err.message, /model file \/models\/llama\.gguf not found/);
    assert.equal(err.details.exitCode, 1);
    assert.equal(err.details.stderr, 'model file /models/llama.gguf not found');
  });

  test('a stop_command that fails rejects with its stderr', async () => {
    const { launcher } = launcherFor(await freePort(), 'x', { stop_command: 'echo "no such pid" >&2; exit 3' });
    await assert.rejects(launcher.stop({}, launchCtx('svc', { machineId: 'box' })), (e: unknown) => {
      assert.ok(e instanceof LaunchError);
      assert.match(e.message, /stop_command .*exited with code 3: no such pid/);
      return true;
    });
  });

  test('a wrong client key is refused with a message that says authentication', async () => {
    const { launcher } = launcherFor(await freePort(), 'x', {}, { identity_file: `${SSH_DIR}/wrong_key` });
    await assert.rejects(launcher.start(launchCtx('svc', { machineId: 'box' })), (e: unknown) => {
      assert.ok(e instanceof LaunchError);
      assert.match(e.message, /ssh authentication refused for root@127\.0\.0\.1:2222/);
      assert.match(e.message, /wrong_key/);
      assert.equal(e.details.reason, 'auth');
      return true;
    });
  });

  test('a wrong pinned host_key_sha256 fails the connection as a host key mismatch', async () => {
    const { launcher } = launcherFor(
      await freePort(),
      'x',
      {},
      {
        host_key_sha256: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      },
    );
    await assert.rejects(launcher.start(launchCtx('svc', { machineId: 'box' })), (e: unknown) => {
      assert.ok(e instanceof LaunchError);
      assert.match(e.message, /host key mismatch for \[127\.0\.0\.1\]:2222/);
      assert.match(e.message, /server offered ssh-ed25519 SHA256:/);
      assert.equal(e.details.reason, 'host_key');
      return true;
    });
  });

  test('the right host_key_sha256 (from the host key file) is accepted', async () => {
    const pub = readFileSync(`${SSH_DIR}/ssh_host_ed25519_key.pub`, 'utf8').split(' ')[1]!;
    const fp = fingerprintSha256(Buffer.from(pub, 'base64'));
    const t = sshTargetFor(machines({ host_key_sha256: fp, known_hosts: '/nonexistent' }), 'box');
    const r = await runSshCommand(t, 'echo out; echo err >&2; exit 7', { timeoutMs: 20_000 });
    assert.deepEqual([r.code, r.stdout, r.stderr], [7, 'out\n', 'err\n']);
  });

  test('runOnMachine runs a one-off command on a configured machine (for wake/sleep actions)', async () => {
    const r = await runOnMachine(machines(), 'box', 'echo "$((6 * 7))"', { timeoutMs: 20_000 });
    assert.deepEqual([r.code, r.stdout], [0, '42\n']);
    await assert.rejects(
      runOnMachine(machines(), 'box', 'echo nope >&2; exit 4', {
        timeoutMs: 20_000,
        check: true,
        what: 'sleep action',
      }),
      /sleep action on box \(root@127\.0\.0\.1:2222\) exited with code 4: nope/,
    );
    await assert.rejects(runOnMachine(machines(), 'nowhere', 'true', { timeoutMs: 1000 }), /unknown machine 'nowhere'/);
  });

  test('a host missing from known_hosts is an unknown host key, never accepted', async () => {
    const kh = `${RUN_DIR}/other_known_hosts`;
    writeFileSync(kh, `[127.0.0.1]:2299 ${readFileSync(`${SSH_DIR}/ssh_host_ed25519_key.pub`, 'utf8')}`);
    const { launcher } = launcherFor(await freePort(), 'x', {}, { known_hosts: kh });
    await assert.rejects(launcher.start(launchCtx('svc', { machineId: 'box' })), (e: unknown) => {
      assert.ok(e instanceof LaunchError);
      assert.match(e.message, /unknown host key for \[127\.0\.0\.1\]:2222: no entry in .*other_known_hosts/);
      return true;
    });
  });

  test('a changed host key (another key pinned in known_hosts) is a mismatch', async () => {
    const kh = `${RUN_DIR}/changed_known_hosts`;
    const other = readFileSync(`${SSH_DIR}/wrong_key.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    writeFileSync(kh, `[127.0.0.1]:2222 ${other}\n`);
    const { launcher } = launcherFor(await freePort(), 'x', {}, { known_hosts: kh });
    await assert.rejects(
      launcher.start(launchCtx('svc', { machineId: 'box' })),
      /host key mismatch for \[127\.0\.0\.1\]:2222/,
    );
  });

  test('a remote command that outlives timeout_ms is cut off with a timeout error', async () => {
    const pidFile = `${RUN_DIR}/sleeper.pid`;
    const { launcher } = launcherFor(await freePort(), 'x', {
      command: `echo $$ > ${pidFile}; exec sleep 60`,
      timeout_ms: 1500,
    });
    await assert.rejects(launcher.start(launchCtx('svc', { machineId: 'box' })), (e: unknown) => {
      assert.ok(e instanceof LaunchError);
      assert.match(e.message, /timed out after 1500 ms/);
      assert.equal(e.details.reason, 'timeout');
      return true;
    });
    rememberPid(pidFile);
  });

  test('an aborted start signal ends the remote command at once', async () => {
    const pidFile = `${RUN_DIR}/sleeper2.pid`;
    const { launcher } = launcherFor(await freePort(), 'x', { command: `echo $$ > ${pidFile}; exec sleep 60` });
    const ac = new AbortController();
    const p = launcher.start(launchCtx('svc', { machineId: 'box', signal: ac.signal }));
    await waitFor(
      async () => {
        try {
          return readFileSync(pidFile, 'utf8').trim() !== '';
        } catch {
          return false;
        }
      },
      { message: 'remote command started' },
    );
    rememberPid(pidFile);
    ac.abort();
    await assert.rejects(p, /aborted/);
  });
});
