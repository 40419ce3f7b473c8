/**
 * Output capture with the `slurm` launcher against the real single-node Slurm
 * (scripts/ci/setup-slurm.sh): the job's output file reaches the service's ring and
 * `GET /v1/services/{id}/logs` while the job runs, including what it prints after it started,
 * and what it printed last before it was stopped.
 *
 * Sharing the cluster: the node has 2 CPUs and every job takes one, so beside
 * test/launchers/slurm.slow.test.ts (and anyone else's jobs) this job may wait PENDING for a
 * CPU: the readiness wait is a bound for that, not an expectation. The gateway leaves Slurm jobs
 * running when it closes (for re-adoption), so the job, named for this run alone, is cancelled
 * by name in `after` whatever happened: a job leaked by a failed run held a CPU for good and
 * starved the next runs (the cause of the old timeouts).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { OutputLine } from '../../src/observability/output-ring.ts';
import { CI_DIR, requireOrSkip, SLURM_CONF, slurmUnavailable } from '../helpers/backends.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { LAUNCHED_SERVER } from '../helpers/launchers.ts';
import { freePort } from '../helpers/net.ts';

const skip = requireOrSkip('Slurm', await slurmUnavailable());
const RUN_DIR = `${CI_DIR}/slurm/visibility-${process.pid}`;
/** This run's job name: never another test's (slurm.slow.test.ts finds its jobs by name). */
const JOB_NAME = `hestia-vis-output-${process.pid}`;
const run = promisify(execFile);

describe('slurm output capture (real Slurm)', { skip: skip ?? false }, () => {
  after(async () => {
    await run('scancel', ['--name', JOB_NAME], { env: { ...process.env, SLURM_CONF } }).catch(() => undefined);
    rmSync(RUN_DIR, { recursive: true, force: true });
  });

  test("the job's output file is followed into /logs while the job runs", async (t) => {
    mkdirSync(RUN_DIR, { recursive: true });
    const port = await freePort();
    const gw = await startTestGateway({
      services: {
        job: {
          base_url: `http://127.0.0.1:${port}`,
          health_url: `http://127.0.0.1:${port}/`,
          health_interval_ms: 50,
          start_timeout_ms: 240_000,
          launcher: {
            type: 'slurm',
            job_name: JOB_NAME,
            env: { SLURM_CONF },
            sbatch_args: ['-o', `${RUN_DIR}/%j.out`],
            poll_interval_ms: 200,
            watch_interval_ms: 300,
            command: `echo 'job says hello'; echo 'job warning' >&2; exec /usr/bin/node ${LAUNCHED_SERVER} {port} tok`,
          },
        },
      },
    });
    t.after(() => gw.close());
    const events = new EventRecorder(gw.ctx.bus);
    const ring = gw.ctx.services.get('job')!.output!();
    const seen = (text: string) =>
      new Promise<void>((resolve) => {
        if (ring.tail().some((l) => l.text === text)) return resolve();
        const off = ring.subscribe((l) => {
          if (l.text === text) {
            off();
            resolve();
          }
        });
      });

    assert.equal((await fetch(`${gw.url}/v1/services/job/start`, { method: 'POST' })).status, 202);
    // A bound for a CPU to come free on the shared node (see the top of the file).
    const ready = await events.nth('service_ready', 1, 240_000);
    await seen('job says hello');
    await seen('job warning');
    // Later output (appended to the job's file, as the job would) arrives too.
    appendFileSync(`${RUN_DIR}/${String(ready.details.jobId)}.out`, 'later line\n');
    await seen('later line');
    const lines = ((await (await fetch(`${gw.url}/v1/services/job/logs`)).json()) as { lines: OutputLine[] }).lines;
    assert.deepEqual(
      lines.map((l) => l.text),
      ['job says hello', 'job warning', 'later line'],
    );
    // The last words before a stop are kept: the stop completes after the file's last read.
    appendFileSync(`${RUN_DIR}/${String(ready.details.jobId)}.out`, 'last words\n');
    assert.equal((await fetch(`${gw.url}/v1/services/job/stop`, { method: 'POST' })).status, 202);
    await events.nth('service_stopped', 1, 60_000);
    const texts = ring.tail().map((l) => l.text);
    assert.ok(texts.includes('last words'), texts.join('\n'));
    // slurmstepd writes its cancellation notice into the file after scancel: read, so the file
    // was read once more after the job ended, before the stop completed.
    assert.match(texts.at(-1) ?? '', /JOB \d+ ON localhost CANCELLED/);
  });
});
