/**
 * One Slurm job's operations on top of a SlurmCli: submit, read its state, cancel.
 * Pure parsing helpers are exported for unit tests.
 */
import type { SlurmLauncherConfig } from '../../config/schema.ts';
import { excerpt } from '../../remote/output-excerpt.ts';
import { LaunchError } from '../types.ts';
import type { SlurmCli } from './cli.ts';

/** States in which the job has not started yet (keep waiting). */
export const WAITING_STATES = new Set([
  'PENDING',
  'CONFIGURING',
  'REQUEUED',
  'REQUEUE_HOLD',
  'REQUEUE_FED',
  'RESIZING',
]);
/** States in which the job still holds its node and runs (or may resume). */
export const ALIVE_STATES = new Set(['RUNNING', 'SUSPENDED', 'STOPPED', 'SIGNALING', 'STAGE_OUT', 'RESV_DEL_HOLD']);

/** The sbatch argv for a service's job. */
export function sbatchArgv(config: SlurmLauncherConfig, jobName: string, command: string): string[] {
  const argv = ['sbatch', '--parsable', '-J', jobName];
  if (config.partition) argv.push(`--partition=${config.partition}`);
  if (config.time) argv.push(`--time=${config.time}`);
  if (config.gres) argv.push(`--gres=${config.gres}`);
  argv.push(...config.sbatch_args, '--wrap', command);
  return argv;
}

/** `--parsable` prints `jobid` or `jobid;cluster`. */
export function parseJobId(stdout: string): string | null {
  const m = /^(\d+)(?:;\S+)?\s*$/m.exec(stdout.trim());
  return m ? m[1]! : null;
}

/**
 * First host of a Slurm node list: `gpu07` → gpu07, `gpu[07-09,12]` → gpu07,
 * `a1,b2` → a1. `(None)`/empty → null.
 */
export function firstNode(nodeList: string): string | null {
  const s = nodeList.trim();
  if (s === '' || s.startsWith('(')) return null;
  const m = /^([^[,]+)\[([^\],-]+)/.exec(s);
  if (m) return `${m[1]}${m[2]}`;
  return s.split(',')[0] ?? null;
}

export interface JobState {
  state: string;
  node: string | null;
  reason: string;
}

/** A job id Slurm no longer knows (purged after MinJobAge): squeue exits 1 with this. */
function isUnknownJob(stderr: string): boolean {
  return /Invalid job id/i.test(stderr);
}

export class SlurmJobs {
  constructor(
    private readonly cli: SlurmCli,
    private readonly serviceId: string,
  ) {}

  get where(): string {
    return this.cli.where;
  }

  /** Submit; resolves with the job id. A rejected submission is a LaunchError with stderr. */
  async submit(argv: string[], signal?: AbortSignal): Promise<string> {
    const r = await this.cli.run(argv, { signal });
    const stderr = excerpt(r.stderr);
    if (r.code !== 0)
      throw new LaunchError(
        `sbatch rejected the job for '${this.serviceId}' (${this.cli.where}, exit ${r.code})${stderr ? `: ${stderr}` : ''}`,
        { exitCode: r.code, stderr, where: this.cli.where },
      );
    const id = parseJobId(r.stdout);
    if (!id)
      throw new LaunchError(`sbatch printed no job id: ${excerpt(r.stdout, 200)}`, { stdout: excerpt(r.stdout, 200) });
    return id;
  }

  /**
   * The job's state (`squeue -t all`, so ended jobs show too) or null when Slurm no longer
   * knows it. squeue failing otherwise (controller down) is a LaunchError.
   */
  async state(jobId: string, signal?: AbortSignal): Promise<JobState | null> {
    const r = await this.cli.run(['squeue', '-j', jobId, '-h', '-t', 'all', '-o', '%T|%N|%r'], { signal });
    if (r.code !== 0) {
      if (isUnknownJob(r.stderr)) return null;
      throw new LaunchError(`squeue failed (${this.cli.where}, exit ${r.code}): ${excerpt(r.stderr)}`, {
        exitCode: r.code,
        stderr: excerpt(r.stderr),
      });
    }
    const line = r.stdout.split('\n').find((l) => l.trim() !== '');
    if (!line) return null;
    const [state = '', nodes = '', reason = ''] = line.trim().split('|');
    return { state, node: firstNode(nodes), reason };
  }

  /** scancel; a job that already ended or is unknown is fine. */
  async cancel(jobId: string): Promise<void> {
    const r = await this.cli.run(['scancel', jobId]);
    if (r.code === 0 || isUnknownJob(r.stderr) || /already completing or completed/i.test(r.stderr)) return;
    throw new LaunchError(`scancel ${jobId} failed (${this.cli.where}, exit ${r.code}): ${excerpt(r.stderr)}`, {
      jobId,
      exitCode: r.code,
      stderr: excerpt(r.stderr),
    });
  }

  /** Job ids RUNNING under this name (for isRunning without a handle). */
  async runningByName(name: string): Promise<string[]> {
    const r = await this.cli.run(['squeue', '-h', '-n', name, '-t', 'RUNNING', '-o', '%i']);
    if (r.code !== 0) throw new LaunchError(`squeue failed (${this.cli.where}): ${excerpt(r.stderr)}`);
    return r.stdout
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean);
  }
}
