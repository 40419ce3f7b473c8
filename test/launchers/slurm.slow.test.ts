/**
 * The slurm launcher against a real single-node Slurm 22.05 cluster (node `localhost`,
 * partition `debug`; scripts/ci/setup-slurm.sh). Jobs run the launched-server fixture, so a
 * RUNNING job really answers HTTP on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { slurmLauncherSchema } from '../../src/config/schema.ts';
import { createSlurmLauncher } from '../../src/launchers/slurm/index.ts';
import { LaunchError, type Launcher, type LaunchHandle } from '../../src/launchers/types.ts';
import { CI_DIR, requireOrSkip, SLURM_CONF, SSH_DIR, slurmUnavailable, sshdUnavailable } from '../helpers/backends.ts';
import { askServer, LAUNCHED_SERVER, launchCtx, testConfig } from '../helpers/launchers.ts';
import { freePort, portOpen } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
const skip = requireOrSkip('Slurm', await slurmUnavailable());
const sshSkip = skip || requireOrSkip('sshd on 127.0.0.1:2222', await sshdUnavailable());
const RUN_DIR = `${CI_DIR}/slurm/test-runs-${process.pid}`;
/** Job output files go to RUN_DIR, removed after the tests. */
const JOB_DIR = RUN_DIR;
const jobIds = new Set<string>();
const launchers: Launcher[] = [];

async function squeueState(jobId: string): Promise<string> {
  const { stdout } = await run('squeue', ['-j', jobId, '-h', '-t', 'all', '-o', '%T'], {
    env: { ...process.env, SLURM_CONF },
  }).catch(() => ({ stdout: '' }));
  return stdout.trim();
}

function slurmLauncher(raw: Record<string, unknown>, config = testConfig({})): Launcher {
  const cfg = slurmLauncherSchema.parse({
    type: 'slurm',
    env: { SLURM_CONF },
    sbatch_args: ['-o', `${JOB_DIR}/%j.out`],
    poll_interval_ms: 200,
    watch_interval_ms: 300,
    ...raw,
  });
  const l = createSlurmLauncher(cfg, { serviceId: 'llm', config, log: launchCtx('llm').log });
  launchers.push(l);
  return l;
}

function track(h: LaunchHandle): string {
  const id = String(h.persist?.jobId);
  jobIds.add(id);
  return id;
}

describe('slurm launcher (real single-node Slurm)', { skip: skip ?? false }, () => {
  before(() => {
    mkdirSync(RUN_DIR, { recursive: true });
  });
  after(async () => {
    for (const l of launchers) await l.close?.();
    if (jobIds.size > 0)
      await run('scancel', [...jobIds], { env: { ...process.env, SLURM_CONF } }).catch(() => undefined);
    rmSync(RUN_DIR, { recursive: true, force: true });
  });

  test('start waits for RUNNING, {host} is the node, the job serves; stop cancels it; start again works', async () => {
    const port = await freePort();
    const l = slurmLauncher({ command: `exec /usr/bin/node ${LAUNCHED_SERVER} {port} job-{service}` });
    const ctx = launchCtx('llm', { port });

    const h = await l.start(ctx);
    const jobId = track(h);
    assert.match(jobId, /^\d+$/);
    assert.equal(h.host, 'localhost', 'the job node becomes {host}');
    assert.equal(await squeueState(jobId), 'RUNNING');
    assert.equal(await l.isRunning!(ctx), true);
    await waitFor(() => portOpen(port), { message: `job server on ${port}` });
    assert.equal((await askServer(port)).token, 'job-llm');

    await l.stop(h, ctx);
    assert.match(await squeueState(jobId), /^(CANCELLED|)$/, 'job gone from the queue');
    assert.equal(await portOpen(port), false);
    assert.equal((await h.exited!).reason, `slurm job ${jobId} cancelled by Hestia`);
    assert.equal(await l.isRunning!(ctx), false);
    assert.equal(await l.adopt!({ jobId }, ctx), null, 'a cancelled job is not adopted');

    const h2 = await l.start(ctx);
    const jobId2 = track(h2);
    assert.notEqual(jobId2, jobId);
    await waitFor(() => portOpen(port), { message: `job server on ${port} again` });
    const adopted = await l.adopt!({ jobId: jobId2 }, ctx);
    assert.equal(adopted?.host, 'localhost');
    await l.stop(h2, ctx);
    assert.equal(await portOpen(port), false);
  });

  test('a job that ends on its own settles exited with its state (COMPLETED)', async () => {
    const flag = `${RUN_DIR}/finish-${Date.now()}`;
    const l = slurmLauncher({ command: `while [ ! -e ${flag} ]; do sleep 0.1; done; exit 0` });
    const h = await l.start(launchCtx('llm'));
    const jobId = track(h);
    writeFileSync(flag, '');
    const exit = await h.exited!;
    assert.equal(exit.reason, `slurm job ${jobId} ended: COMPLETED`);
  });

  test('a job cancelled by someone else is a crash: exited says CANCELLED', async () => {
    const l = slurmLauncher({ command: 'exec sleep 300' });
    const h = await l.start(launchCtx('llm'));
    const jobId = track(h);
    await run('scancel', [jobId], { env: { ...process.env, SLURM_CONF } });
    const exit = await h.exited!;
    assert.match(exit.reason, new RegExp(`^slurm job ${jobId} ended: CANCELLED`));
  });

  test('a rejected sbatch (bad partition) fails with sbatch’s stderr', async () => {
    const l = slurmLauncher({ command: 'true', partition: 'no-such-partition' });
    await assert.rejects(l.start(launchCtx('llm')), (e: unknown) => {
      assert.ok(e instanceof LaunchError);
      assert.match(e.message, /sbatch rejected the job for 'llm'/);
      assert.match(e.message, /invalid partition/i);
      assert.equal(e.details.exitCode, 1);
      return true;
    });
  });

  test('an abandoned start (signal aborted while PENDING) cancels the job', async () => {
    const ac = new AbortController();
    const l = slurmLauncher({
      command: 'exec sleep 300',
      sbatch_args: ['-o', `${JOB_DIR}/%j.out`, '--begin=now+1hour'],
    });
    const p = l.start(launchCtx('llm', { signal: ac.signal }));
    // Find the pending job by its name, then abandon the start.
    let jobId = '';
    await waitFor(
      async () => {
        const { stdout } = await run('squeue', ['-h', '-n', 'hestia-llm', '-t', 'PENDING', '-o', '%i'], {
          env: { ...process.env, SLURM_CONF },
        });
        jobId = stdout.trim().split('\n')[0] ?? '';
        return jobId !== '';
      },
      { message: 'job pending', intervalMs: 100 },
    );
    jobIds.add(jobId);
    ac.abort();
    await assert.rejects(p, /abandoned; job cancelled/);
    assert.match(await squeueState(jobId), /^(CANCELLED|)$/);
  });

  test('over ssh on a login node (machine): submit, RUNNING, stop', { skip: sshSkip ?? false }, async () => {
    const port = await freePort();
    const config = testConfig({
      machines: {
        login: {
          host: '127.0.0.1',
          ssh: { port: 2222, identity_file: `${SSH_DIR}/client_key`, known_hosts: `${SSH_DIR}/known_hosts` },
        },
      },
    });
    const l = slurmLauncher(
      { command: `exec /usr/bin/node ${LAUNCHED_SERVER} {port} via-ssh`, machine: 'login' },
      config,
    );
    const ctx = launchCtx('llm', { port });
    const h = await l.start(ctx);
    const jobId = track(h);
    assert.equal(h.host, 'localhost');
    await waitFor(() => portOpen(port), { message: `job server on ${port}` });
    assert.equal((await askServer(port)).token, 'via-ssh');
    await l.stop(h, ctx);
    assert.match(await squeueState(jobId), /^(CANCELLED|)$/);
    assert.equal(existsSync(`${JOB_DIR}/${jobId}.out`), true, 'sbatch_args reached sbatch over ssh');
  });
});
