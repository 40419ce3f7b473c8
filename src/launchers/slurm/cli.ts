/**
 * Running the Slurm CLI (sbatch, squeue, scancel): locally with spawn (no shell, bounded
 * by a timeout), or on a login node over SSH when the launcher names a `machine`.
 * Either way the caller gets the exit code and output; only "could not run it at all"
 * (not installed, ssh failure, timeout) is a LaunchError.
 */
import { spawn } from 'node:child_process';
import { BoundedBuffer } from '../../remote/output-excerpt.ts';
import type { SshTarget } from '../../remote/ssh/connection.ts';
import { runSshCommand } from '../../remote/ssh/exec.ts';
import { LaunchError } from '../types.ts';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface SlurmCli {
  /** Where the commands run, for messages: `local` or `login node <machine>`. */
  readonly where: string;
  run(argv: readonly string[], opts?: { signal?: AbortSignal | undefined }): Promise<CliResult>;
}

/** POSIX single-quote one argument for a remote shell. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Run locally (no shell): `env` is laid over Hestia's own environment (e.g. SLURM_CONF). */
export function localCli(env: Record<string, string>, timeoutMs: number): SlurmCli {
  return {
    where: 'local',
    run(argv, opts = {}) {
      const [cmd, ...args] = argv;
      if (!cmd) return Promise.reject(new LaunchError('empty Slurm command'));
      return new Promise<CliResult>((resolve, reject) => {
        const out = new BoundedBuffer();
        const err = new BoundedBuffer();
        let why: 'timeout' | 'aborted' | null = null;
        const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
        const kill = (reason: 'timeout' | 'aborted') => {
          why = reason;
          child.kill('SIGKILL');
        };
        const timer = setTimeout(() => kill('timeout'), timeoutMs);
        const onAbort = () => kill('aborted');
        opts.signal?.addEventListener('abort', onAbort, { once: true });
        child.stdout.on('data', (d: Buffer) => out.push(d));
        child.stderr.on('data', (d: Buffer) => err.push(d));
        const cleanup = () => {
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
        };
        child.once('error', (e: NodeJS.ErrnoException) => {
          cleanup();
          reject(
            e.code === 'ENOENT'
              ? new LaunchError(`${cmd} not found on PATH (is the Slurm client installed?)`, { command: cmd })
              : new LaunchError(`${cmd} failed to run: ${e.message}`, { command: cmd }),
          );
        });
        child.once('close', (code, signal) => {
          cleanup();
          if (why === 'timeout')
            return reject(
              new LaunchError(`${cmd} timed out after ${timeoutMs} ms`, { command: cmd, reason: 'timeout' }),
            );
          if (why === 'aborted') return reject(new LaunchError(`${cmd} aborted`, { command: cmd, reason: 'aborted' }));
          resolve({ code: code ?? (signal ? 128 : 1), stdout: out.text(), stderr: err.text() });
        });
      });
    },
  };
}

/** Run on a login node over SSH; `env` is passed as `env K=V …` in front of the command. */
export function sshCli(target: SshTarget, env: Record<string, string>, timeoutMs: number): SlurmCli {
  const prefix = Object.entries(env).map(([k, v]) => shellQuote(`${k}=${v}`));
  return {
    where: `login node ${target.machineId}`,
    async run(argv, opts = {}) {
      const line = [...(prefix.length ? ['env', ...prefix] : []), ...argv.map(shellQuote)].join(' ');
      const r = await runSshCommand(target, line, { timeoutMs, signal: opts.signal });
      return { code: r.code ?? 255, stdout: r.stdout, stderr: r.stderr };
    },
  };
}
