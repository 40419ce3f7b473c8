/**
 * The `slurm` launcher (SPEC §5): the service runs as a Slurm batch job.
 *
 * - start: `sbatch --parsable -J <job_name> [--partition] [--time] [--gres] <sbatch_args…>
 *   --wrap <command>`, then poll `squeue -j ID` every `poll_interval_ms` until RUNNING.
 *   The job's (first) node becomes `handle.host`, so `{host}` in base_url/health_url
 *   points at it. A job that ends before it runs fails the start with its state; an aborted
 *   start (start_timeout_ms, shutdown) cancels the job.
 * - exited: `squeue -j ID -t all` every `watch_interval_ms` while it runs; a job that
 *   ends on its own (COMPLETED, TIMEOUT, PREEMPTED, FAILED, NODE_FAIL, CANCELLED by someone
 *   else, …) settles it with the state as the reason.
 * - stop: `scancel ID`, then wait (bounded by timeout_ms) until the job has left the node.
 * - The CLI runs locally (env from `env` laid over Hestia's, e.g. SLURM_CONF), or over SSH
 *   on the login node `machine`. Every CLI call is bounded by `timeout_ms`.
 * - persist `{jobId}`; adopt: the job is still RUNNING.
 * - output: while the job runs, its output file (`StdOut` of `scontrol show job`) is read from
 *   where the CLI runs, at most OUTPUT_CHUNK bytes every OUTPUT_POLL_MS (`tail -c +N | head -c |
 *   base64`, so bytes are counted exactly), into the service's ring; once the job has ended the
 *   file is read to its end, and stop() returns after that last read.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { SlurmLauncherConfig } from '../../config/schema.ts';
import type { Logger } from '../../observability/logger.ts';
import { sshTargetFor } from '../../remote/ssh/connection.ts';
import {
  type ExitInfo,
  expandTemplate,
  type LaunchContext,
  LaunchError,
  type Launcher,
  type LauncherFactory,
  type LaunchHandle,
  type TemplateVars,
} from '../types.ts';
import { localCli, type SlurmCli, sshCli } from './cli.ts';
import { ALIVE_STATES, type JobState, SlurmJobs, sbatchArgv, WAITING_STATES } from './job.ts';

export { firstNode, parseJobId, sbatchArgv } from './job.ts';

/** How often a running job's output file is read, and the most bytes read each time. */
const OUTPUT_POLL_MS = 1_000;
const OUTPUT_CHUNK = 48 * 1024;

export const createSlurmLauncher: LauncherFactory<SlurmLauncherConfig> = (config, deps): Launcher => {
  const jobName = config.job_name ?? `hestia-${deps.serviceId}`;
  /** Jobs we cancelled ourselves: their end is not a crash. */
  const cancelledByUs = new Set<string>();
  const watchers = new Set<AbortController>();
  let lastJobId: string | null = null;

  const cliFor = (ctx: LaunchContext): SlurmCli => {
    const env = Object.fromEntries(Object.entries(config.env).map(([k, v]) => [k, expandTemplate(v, ctx.vars)]));
    return config.machine
      ? sshCli(sshTargetFor(deps.config, config.machine, ctx.machine), env, config.timeout_ms)
      : localCli(env, config.timeout_ms);
  };
  const jobsFor = (ctx: LaunchContext): SlurmJobs => new SlurmJobs(cliFor(ctx), deps.serviceId);

  /** Followers of running jobs' output, by job id: stop() waits for the last read. */
  const followers = new Map<string, Promise<void>>();

  /**
   * Read the job's output file into ctx.output while it runs. When `until` settles (the job
   * ended: stopped, crashed, completed) the file is read once more to its end, so the last lines
   * the job wrote before it was stopped are not lost; launcher close() stops at once.
   */
  const followOutput = (jobId: string, ctx: LaunchContext, until: Promise<unknown>): void => {
    const out = ctx.output;
    if (!out) return;
    const cli = cliFor(ctx);
    const closed = new AbortController();
    watchers.add(closed);
    let ended = false;
    let wake: AbortController = new AbortController();
    void until.then(() => {
      ended = true;
      wake.abort();
    });
    let file: string | null = null;
    let offset = 0;
    let warned = false;
    /** One read from the offset on (at most OUTPUT_CHUNK bytes); the number of bytes read. */
    const readOnce = async (): Promise<number> => {
      if (file === null) {
        const r = await cli.run(['scontrol', 'show', 'job', '-o', jobId], { signal: closed.signal });
        file = /\bStdOut=(\S+)/.exec(r.stdout)?.[1] ?? null;
        if (file === null) return 0;
      }
      // Exact bytes from the offset on, whatever they are.
      const r = await cli.run(
        [
          'sh',
          '-c',
          `tail -c +"$1" "$2" 2>/dev/null | head -c ${OUTPUT_CHUNK} | base64 -w0`,
          'sh',
          String(offset + 1),
          file,
        ],
        { signal: closed.signal },
      );
      const data = Buffer.from(r.stdout.trim(), 'base64');
      if (data.length > 0) {
        offset += data.length;
        out.write('stdout', data);
      }
      return data.length;
    };
    const done = (async () => {
      try {
        for (;;) {
          const last = ended;
          let n = 0;
          try {
            n = await readOnce();
          } catch (err) {
            if (closed.signal.aborted) break;
            if (!warned)
              ctx.log.warn(
                { event_type: 'launcher_slurm', jobId, err: (err as Error).message },
                'reading the job output failed; will retry',
              );
            warned = true;
          }
          if (closed.signal.aborted) break;
          if (n === OUTPUT_CHUNK) continue; // more is waiting: read on at once
          if (last) break; // the read after the job ended reached the end of the file
          if (!ended) {
            wake = new AbortController();
            await delay(OUTPUT_POLL_MS, undefined, { signal: wake.signal }).catch(() => {});
          }
        }
      } finally {
        out.end('stdout');
        watchers.delete(closed);
        followers.delete(jobId);
      }
    })();
    followers.set(jobId, done);
  };

  /** Poll the job's state until it leaves the node, settling with the reason. Never rejects. */
  const watch = (jobs: SlurmJobs, jobId: string, log: Logger): Promise<ExitInfo> => {
    const ac = new AbortController();
    watchers.add(ac);
    return new Promise<ExitInfo>((resolve) => {
      void (async () => {
        let warned = false;
        /** When COMPLETING was first seen (the job is ending; its final state follows). */
        let endingSince: number | null = null;
        try {
          while (!ac.signal.aborted) {
            // COMPLETING is brief: once seen, poll fast for the final state (the crash reason).
            await delay(endingSince !== null ? config.poll_interval_ms : config.watch_interval_ms, undefined, {
              signal: ac.signal,
            });
            let st: JobState | null;
            try {
              st = await jobs.state(jobId, ac.signal);
            } catch (err) {
              // Controller restarting / ssh hiccup: not an exit. Keep watching, warn once.
              if (!warned && !ac.signal.aborted)
                log.warn(
                  { event_type: 'launcher_slurm', jobId, err: (err as Error).message },
                  'squeue failed while watching job',
                );
              warned = true;
              continue;
            }
            if (st && (ALIVE_STATES.has(st.state) || WAITING_STATES.has(st.state))) continue;
            if (st?.state === 'COMPLETING') {
              endingSince ??= Date.now();
              // Bounded: a node stuck completing still ends the watch, with that state.
              if (Date.now() - endingSince < config.timeout_ms) continue;
            }
            const state = st?.state ?? 'GONE';
            const ours = cancelledByUs.delete(jobId);
            resolve({
              code: null,
              signal: null,
              reason: ours
                ? `slurm job ${jobId} cancelled by Hestia`
                : st
                  ? `slurm job ${jobId} ended: ${state}${st.reason && st.reason !== 'None' ? ` (${st.reason})` : ''}`
                  : `slurm job ${jobId} is no longer known to Slurm`,
            });
            return;
          }
        } catch {
          // aborted (launcher closed): stay pending; a gateway shutdown is not a crash.
        } finally {
          watchers.delete(ac);
        }
      })();
    });
  };

  const handleFor = (jobs: SlurmJobs, jobId: string, node: string | null, ctx: LaunchContext): LaunchHandle => {
    const exited = watch(jobs, jobId, ctx.log);
    followOutput(jobId, ctx, exited);
    return {
      exited,
      ...(node ? { host: node } : {}),
      persist: { jobId },
      info: { jobId, node, jobName },
    };
  };

  /** Wait for RUNNING; throws with the state if the job ends first. */
  const waitRunning = async (jobs: SlurmJobs, jobId: string, ctx: LaunchContext): Promise<JobState> => {
    let lastLogged = '';
    for (;;) {
      const st = await jobs.state(jobId, ctx.signal);
      if (st?.state === 'RUNNING') return st;
      if (!st || !WAITING_STATES.has(st.state)) {
        const what = st
          ? `${st.state}${st.reason && st.reason !== 'None' ? ` (${st.reason})` : ''}`
          : 'gone from squeue';
        throw new LaunchError(`slurm job ${jobId} for '${deps.serviceId}' ended before it ran: ${what}`, {
          jobId,
          state: st?.state ?? null,
          reason: st?.reason ?? null,
        });
      }
      if (st.state + st.reason !== lastLogged) {
        lastLogged = st.state + st.reason;
        ctx.log.info(
          { event_type: 'launcher_slurm', jobId, state: st.state, reason: st.reason },
          'waiting for slurm job',
        );
      }
      await delay(config.poll_interval_ms, undefined, { signal: ctx.signal });
    }
  };

  /** scancel, then poll until the job no longer holds its node (bounded by timeout_ms). */
  const cancelAndWait = async (jobs: SlurmJobs, jobId: string): Promise<void> => {
    cancelledByUs.add(jobId);
    await jobs.cancel(jobId);
    const deadline = Date.now() + config.timeout_ms;
    for (;;) {
      const st = await jobs.state(jobId);
      // COMPLETING = processes are still being torn down on the node: not gone yet.
      if (!st || !(ALIVE_STATES.has(st.state) || WAITING_STATES.has(st.state) || st.state === 'COMPLETING')) return;
      if (Date.now() > deadline)
        throw new LaunchError(`slurm job ${jobId} still ${st.state} ${config.timeout_ms} ms after scancel`, {
          jobId,
          state: st.state,
        });
      await delay(config.poll_interval_ms);
    }
  };

  const jobIdOf = (handle: LaunchHandle | Record<string, unknown>): string | null => {
    const p = ('persist' in handle ? handle.persist : handle) as Record<string, unknown> | undefined;
    const id = p?.jobId;
    return typeof id === 'string' || typeof id === 'number' ? String(id) : null;
  };

  return {
    type: 'slurm',

    async start(ctx: LaunchContext): Promise<LaunchHandle> {
      const jobs = jobsFor(ctx);
      const vars: TemplateVars = ctx.vars;
      const argv = sbatchArgv(config, jobName, expandTemplate(config.command, vars));
      const jobId = await jobs.submit(argv, ctx.signal);
      lastJobId = jobId;
      ctx.log.info({ event_type: 'launcher_slurm', jobId, where: jobs.where }, 'slurm job submitted');
      let st: JobState;
      try {
        st = await waitRunning(jobs, jobId, ctx);
      } catch (err) {
        // Abandoned start (or squeue trouble): do not leave a job queued behind us.
        await cancelAndWait(jobs, jobId).catch((e: unknown) =>
          ctx.log.warn({ event_type: 'launcher_slurm', jobId, err: (e as Error).message }, 'cancel after failed start'),
        );
        if (ctx.signal.aborted && !(err instanceof LaunchError && err.details.jobId))
          throw new LaunchError(`start of slurm job ${jobId} abandoned; job cancelled`, { jobId, reason: 'aborted' });
        throw err;
      }
      return handleFor(jobs, jobId, st.node, ctx);
    },

    async stop(handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
      const jobId = jobIdOf(handle);
      if (!jobId) return;
      await cancelAndWait(jobsFor(ctx), jobId);
      // The job is gone: its output file's last lines are read before the stop completes
      // (bounded: one CLI call, itself bounded by timeout_ms, per chunk).
      await followers.get(jobId);
    },

    async isRunning(ctx: LaunchContext): Promise<boolean> {
      const jobs = jobsFor(ctx);
      if (lastJobId) return (await jobs.state(lastJobId))?.state === 'RUNNING';
      return (await jobs.runningByName(jobName)).length > 0;
    },

    async adopt(persisted: Record<string, unknown>, ctx: LaunchContext): Promise<LaunchHandle | null> {
      const jobId = jobIdOf(persisted);
      if (!jobId) return null;
      const jobs = jobsFor(ctx);
      const st = await jobs.state(jobId);
      if (st?.state !== 'RUNNING') return null;
      lastJobId = jobId;
      return handleFor(jobs, jobId, st.node, ctx);
    },

    async close(): Promise<void> {
      for (const ac of watchers) ac.abort();
      watchers.clear();
    },
  };
};

export default createSlurmLauncher;
