/**
 * A real `hestia agent` as a child process of the test (the real bin), on a given loopback
 * port and state dir, so that the processes it manages are its children and it can be stopped
 * and restarted like on a GPU box. The URL is read from the `agent_listening` log line.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliEnv, HESTIA_BIN } from './cli.ts';
import { childLogLines, type LogLines } from './log-lines.ts';

export interface ChildAgent extends LogLines {
  url: string;
  pid: number;
  child: ChildProcessWithoutNullStreams;
  exited: Promise<number | null>;
  /** SIGTERM and wait for the exit (its processes keep running). */
  stop(): Promise<void>;
  /** SIGKILL if still running (for `after` hooks). */
  kill(): void;
}

export interface AgentSpec {
  port: number;
  stateDir: string;
  token: string;
  extraArgs?: string[];
  /** Extra environment for the agent (e.g. PATH with a fake nvidia-smi). */
  env?: Record<string, string | undefined>;
}

export async function spawnAgent(spec: AgentSpec): Promise<ChildAgent> {
  const tokenFile = join(spec.stateDir, '..', `token-${spec.port}`);
  writeFileSync(tokenFile, `${spec.token}\n`, { mode: 0o600 });
  const child = spawn(
    process.execPath,
    [
      HESTIA_BIN,
      'agent',
      '--listen',
      `127.0.0.1:${spec.port}`,
      '--token-file',
      tokenFile,
      '--state-dir',
      spec.stateDir,
      ...(spec.extraArgs ?? []),
    ],
    { env: cliEnv({ HESTIA_AGENT_TOKEN: undefined, ...(spec.env ?? {}) }), stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const lines = childLogLines(child, 'the agent');
  const exited = lines.exited;
  // A bound for a loaded machine, not an expectation.
  const listening = await lines.waitForLine((l) => l.event_type === 'agent_listening', 60_000);
  const alive = () => child.exitCode === null && child.signalCode === null;
  // Never outlive the test process (a timed-out file skips its after hooks).
  const onExit = () => {
    if (alive()) child.kill('SIGKILL');
  };
  process.once('exit', onExit);
  void exited.then(() => process.off('exit', onExit));
  return {
    lines: lines.lines,
    waitForLine: lines.waitForLine,
    url: String(listening.url),
    pid: child.pid as number,
    child,
    exited,
    async stop() {
      if (alive()) child.kill('SIGTERM');
      await exited;
    },
    kill() {
      if (alive()) child.kill('SIGKILL');
    },
  };
}
