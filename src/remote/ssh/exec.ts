/**
 * "Run a command on a machine over SSH": the reusable piece. The ssh launcher uses it for
 * command / stop_command / is_running_command, the slurm launcher for a login node, and the
 * machines' `wake`/`sleep` ssh actions can use it too.
 *
 * Remote commands that start a server must detach it completely, or the session never ends
 * (the channel stays open while any process holds its stdout/stderr):
 *
 *     cd ~/llm || exit 1; setsid nohup ./serve --port {port} </dev/null >serve.log 2>&1 & echo $! > serve.pid
 *
 * i.e. the backgrounded job is ONE simple command with all three fds redirected. A
 * backgrounded compound list (`cd x && setsid nohup cmd >log 2>&1 &`) runs in a subshell that
 * still holds the channel's stdout, so the session hangs until `timeout_ms` kills it. Use
 * `;`/`||` before the background job instead, and then `$!` is the server's real PID.
 */
import type { Client, ClientChannel } from 'ssh2';
import type { Config } from '../../config/schema.ts';
import { LaunchError } from '../errors.ts';
import { BoundedBuffer, excerpt } from '../output-excerpt.ts';
import { describeTarget, openSsh, type SshTarget, sshTargetFor } from './connection.ts';

export interface SshRunOptions {
  /** Bound on the whole run (connect + command). On expiry the channel and connection close. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  /** Every piece of the command's output as it arrives (besides the bounded copy in the result). */
  onData?: ((stream: 'stdout' | 'stderr', data: Buffer) => void) | undefined;
}

export interface SshRunResult {
  /** Remote exit status; null when the remote side ended on a signal. */
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/**
 * Run `command` on the target (through the remote user's login shell, as `ssh host cmd`
 * does). Resolves with the exit status and bounded output whatever the status is; rejects
 * with a LaunchError only when the command could not be run to completion (connection,
 * authentication, host key, timeout, abort).
 */
export async function runSshCommand(target: SshTarget, command: string, opts: SshRunOptions): Promise<SshRunResult> {
  const started = Date.now();
  const where = describeTarget(target);
  const details = { machineId: target.machineId, host: target.host, port: target.port };

  // One controller covers connect and exec: the timeout and the caller's signal both end up here.
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort('timeout'), opts.timeoutMs);
  const onOuterAbort = () => ac.abort('aborted');
  if (opts.signal?.aborted) onOuterAbort();
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const abortError = () =>
    ac.signal.reason === 'timeout'
      ? new LaunchError(`ssh command on ${where} timed out after ${opts.timeoutMs} ms: ${excerpt(command, 200)}`, {
          ...details,
          reason: 'timeout',
          timeoutMs: opts.timeoutMs,
        })
      : new LaunchError(`ssh command on ${where} aborted`, { ...details, reason: 'aborted' });

  let client: Client | undefined;
  try {
    try {
      client = await openSsh(target, ac.signal);
    } catch (err) {
      if (ac.signal.aborted) throw abortError();
      throw err;
    }
    const c = client;
    return await new Promise<SshRunResult>((resolve, reject) => {
      let channel: ClientChannel | undefined;
      const onAbort = () => {
        // Closing the channel then the connection is what ends a hung remote command for
        // us; sshd sends SIGHUP to the session's processes when the connection drops.
        channel?.close();
        c.destroy();
        reject(abortError());
      };
      if (ac.signal.aborted) return onAbort();
      ac.signal.addEventListener('abort', onAbort, { once: true });
      c.on('error', (err) => {
        ac.signal.removeEventListener('abort', onAbort);
        reject(new LaunchError(`ssh connection to ${where} failed during the command: ${err.message}`, details));
      });
      c.exec(command, (err, ch) => {
        if (err) {
          ac.signal.removeEventListener('abort', onAbort);
          return reject(new LaunchError(`ssh exec on ${where} failed: ${err.message}`, details));
        }
        channel = ch;
        const out = new BoundedBuffer();
        const errOut = new BoundedBuffer();
        const onData = opts.onData;
        ch.on('data', (d: Buffer) => {
          out.push(d);
          onData?.('stdout', d);
        });
        ch.stderr.on('data', (d: Buffer) => {
          errOut.push(d);
          onData?.('stderr', d);
        });
        ch.on('close', (code: number | null | undefined, sig: string | null | undefined) => {
          ac.signal.removeEventListener('abort', onAbort);
          if (ac.signal.aborted) return; // onAbort already rejected
          resolve({
            code: typeof code === 'number' ? code : null,
            signal: sig ?? null,
            stdout: out.text(),
            stderr: errOut.text(),
            durationMs: Date.now() - started,
          });
        });
      });
    });
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onOuterAbort);
    client?.end();
  }
}

/**
 * Like runSshCommand, but a non-zero exit (or a signal) is a LaunchError carrying the exit
 * code and trimmed stderr: `what` names the step ("start command", "stop_command").
 */
export async function runSshChecked(
  target: SshTarget,
  command: string,
  opts: SshRunOptions & { what: string },
): Promise<SshRunResult> {
  const r = await runSshCommand(target, command, opts);
  if (r.code === 0) return r;
  const status = r.code === null ? `ended by signal ${r.signal ?? 'unknown'}` : `exited with code ${r.code}`;
  const stderr = excerpt(r.stderr || r.stdout);
  throw new LaunchError(
    `${opts.what} on ${target.machineId} (${describeTarget(target)}) ${status}${stderr ? `: ${stderr}` : ''}`,
    {
      machineId: target.machineId,
      host: target.host,
      exitCode: r.code,
      signal: r.signal,
      stderr,
    },
  );
}

/**
 * Run `command` on configured machine `machineId` over SSH (its `machines.<id>.ssh` settings,
 * pinned host key, key auth), bounded by `timeoutMs`. For `wake`/`sleep` ssh actions and
 * other one-off remote commands. Resolves with the exit status and bounded output; with
 * `check: true` a non-zero exit is a LaunchError carrying the exit code and stderr.
 */
export async function runOnMachine(
  config: Config,
  machineId: string,
  command: string,
  opts: { timeoutMs: number; signal?: AbortSignal; check?: boolean; what?: string },
): Promise<SshRunResult> {
  const t = sshTargetFor(config, machineId);
  return opts.check
    ? runSshChecked(t, command, { timeoutMs: opts.timeoutMs, signal: opts.signal, what: opts.what ?? 'ssh command' })
    : runSshCommand(t, command, { timeoutMs: opts.timeoutMs, signal: opts.signal });
}
