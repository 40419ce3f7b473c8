/**
 * The agent's process table (SPEC §15): start, stop and watch process groups exactly like the
 * local `process` launcher (its pieces: launchers/process/group.ts for signalling and stopping
 * a group, proc.ts for /proc identity), keep each one's output in a bounded ring, and remember
 * them in a state file (mode 0600 in a 0700 directory) so that a restarted agent re-adopts what
 * still runs — only a process that is provably the same one (pid, start time, boot id, argv).
 *
 * Children are NOT tracked for kill-on-exit (launchers/process/children.ts): outliving the
 * agent is the point. A re-adopted process is not our child: its exit is seen by polling /proc
 * once a second. Its output is still captured: a child's stdout and stderr are files in the
 * state dir, not pipes (output-file.ts), and the next agent reads on from where the last one
 * stopped (offsets saved in the state file at a clean shutdown).
 *
 * Bounds: at most `maxProcesses` running at once; finished ones are kept (with their ring) for
 * inspection up to `maxFinished`, oldest dropped first.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stopGroup } from '../launchers/process/group.ts';
import { bootId, readCmdline, readStat } from '../launchers/process/proc.ts';
import type { Logger } from '../observability/logger.ts';
import type { AgentProcess, ExitRecord, OutputLine, StartRequest } from '../remote/agent/protocol.ts';
import { HeadTailLines } from '../remote/output-excerpt.ts';
import { OutputFile, openForChild } from './output-file.ts';
import { LineSplitter, OutputRing } from './output-ring.ts';

export const DEFAULT_MAX_PROCESSES = 64;
const MAX_FINISHED = 64;
const ADOPTED_POLL_MS = 1_000;
const STATE_FILE = 'state.json';
const OUTPUT_DIR = 'output';
const STREAMS = ['stdout', 'stderr'] as const;
type StreamName = (typeof STREAMS)[number];

export interface SupervisorOptions {
  stateDir: string;
  log: Logger;
  maxProcesses?: number;
  onExit(id: string, exit: ExitRecord): void;
  onOutput(id: string, line: OutputLine): void;
  /** True while output should not be read (the event subscribers are congested). */
  outputPaused?(): boolean;
}

interface Entry {
  info: AgentProcess;
  pgid: number;
  startTime: string;
  bootId: string | null;
  stopSignal: NodeJS.Signals;
  stopTimeoutMs: number;
  ring: OutputRing;
  /** The readers of its stdout and stderr files (none once it ended and was read). */
  files: OutputFile[];
  stderrLines: HeadTailLines;
  exited: Promise<ExitRecord>;
  stopping: Promise<void> | null;
}

interface PersistedEntry {
  id: string;
  name: string;
  pid: number;
  pgid: number;
  startTime: string;
  bootId: string | null;
  argv: string[];
  cwd: string | null;
  startedAt: string;
  stopSignal: NodeJS.Signals;
  stopTimeoutMs: number;
  /** Where the agent had read its output files to (saved at a clean shutdown). */
  offsets?: Partial<Record<StreamName, number>>;
}

export class StartRefused extends Error {
  constructor(
    message: string,
    readonly code: 'tooMany' | 'badRequest' | 'spawnFailed',
  ) {
    super(message);
  }
}

export function parseSignal(name: string | undefined): NodeJS.Signals | null {
  if (name === undefined) return 'SIGTERM';
  const up = name.toUpperCase();
  const full = up.startsWith('SIG') ? up : `SIG${up}`;
  return full in osConstants.signals ? (full as NodeJS.Signals) : null;
}

function describeExit(code: number | null, signal: string | null): string {
  return signal ? `was killed by ${signal}` : `exited with code ${code ?? 'unknown'}`;
}

export class Supervisor {
  private readonly entries = new Map<string, Entry>();
  private readonly maxProcesses: number;
  private closed = false;

  constructor(private readonly opts: SupervisorOptions) {
    this.maxProcesses = opts.maxProcesses ?? DEFAULT_MAX_PROCESSES;
    mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
    chmodSync(opts.stateDir, 0o700);
    mkdirSync(join(opts.stateDir, OUTPUT_DIR), { recursive: true, mode: 0o700 });
  }

  private outputPath(id: string, stream: StreamName): string {
    return join(this.opts.stateDir, OUTPUT_DIR, `${id}.${stream}`);
  }

  /** Read the process's output files into its ring, the stderr excerpt and the subscribers. */
  private attachOutput(entry: Entry, offsets: Partial<Record<StreamName, number>> = {}): void {
    const id = entry.info.id;
    for (const stream of STREAMS) {
      const path = this.outputPath(id, stream);
      if (!existsSync(path)) continue;
      const emit = (text: string) => {
        const line: OutputLine = { time: new Date().toISOString(), stream, text };
        entry.ring.push(line);
        if (stream === 'stderr') entry.stderrLines.push(text);
        this.opts.onOutput(id, line);
      };
      const splitter = new LineSplitter(emit);
      const file = new OutputFile({
        path,
        ...(offsets[stream] !== undefined ? { offset: offsets[stream] } : {}),
        onData: (chunk) => splitter.write(chunk),
        onSkipped: (bytes) => {
          splitter.end();
          emit(`[hestia agent: ${bytes} bytes of output skipped]`);
        },
        paused: () => this.opts.outputPaused?.() ?? false,
        onFinished: () => splitter.end(),
      });
      entry.files.push(file);
    }
  }

  /** The process ended: read the rest of its output (paced), then drop the files. */
  private async finishOutput(entry: Entry): Promise<void> {
    const files = entry.files;
    await Promise.all(files.map((f) => f.finish().catch(() => {})));
    for (const f of files) f.remove();
    if (entry.files === files) entry.files = [];
  }

  /** Read on (the subscribers drained). */
  kickOutput(): void {
    for (const e of this.entries.values()) for (const f of e.files ?? []) f.kick();
  }

  get runningCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.info.running) n++;
    return n;
  }

  list(): AgentProcess[] {
    return [...this.entries.values()].filter((e) => e.info.id).map((e) => ({ ...e.info }));
  }

  get(id: string): AgentProcess | null {
    const e = this.entries.get(id);
    return e?.info.id ? { ...e.info } : null;
  }

  output(id: string, tail?: number): OutputLine[] | null {
    return this.entries.get(id)?.ring.tail(tail) ?? null;
  }

  /** Re-adopt what the state file lists and is still the same process; drop the rest. */
  adoptFromState(): AgentProcess[] {
    const file = join(this.opts.stateDir, STATE_FILE);
    if (!existsSync(file)) return [];
    let rows: PersistedEntry[] = [];
    try {
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as { processes?: PersistedEntry[] };
      rows = Array.isArray(parsed.processes) ? parsed.processes : [];
    } catch (err) {
      this.opts.log.warn(
        { event_type: 'agent_state_unreadable', file, err: String(err) },
        'state file unreadable; ignored',
      );
    }
    const adopted: AgentProcess[] = [];
    for (const p of rows) {
      const st = readStat(p.pid);
      const same =
        st !== null &&
        st.state !== 'Z' &&
        st.startTime === p.startTime &&
        (!p.bootId || p.bootId === bootId()) &&
        (readCmdline(p.pid) ?? []).join('\0') === p.argv.join('\0');
      if (!same) {
        this.opts.log.info({ event_type: 'agent_not_adopted', id: p.id, pid: p.pid }, `process ${p.id} is gone`);
        continue;
      }
      const info: AgentProcess = {
        id: p.id,
        name: p.name,
        pid: p.pid,
        argv: p.argv,
        cwd: p.cwd,
        startedAt: p.startedAt,
        adopted: true,
        running: true,
        exit: null,
      };
      const entry: Entry = {
        info,
        pgid: p.pgid,
        startTime: p.startTime,
        bootId: p.bootId,
        stopSignal: p.stopSignal,
        stopTimeoutMs: p.stopTimeoutMs,
        ring: new OutputRing(),
        files: [],
        stderrLines: new HeadTailLines(),
        exited: Promise.resolve() as unknown as Promise<ExitRecord>,
        stopping: null,
      };
      this.attachOutput(entry, p.offsets);
      entry.exited = this.pollExit(p.pid, p.startTime).then(async (exit) => {
        await this.finishOutput(entry);
        const tail = entry.stderrLines.summary();
        return tail ? { ...exit, reason: `${exit.reason}: ${tail}` } : exit;
      });
      this.entries.set(p.id, entry);
      this.watch(entry);
      adopted.push({ ...info });
      this.opts.log.info({ event_type: 'agent_adopted', id: p.id, pid: p.pid }, `re-adopted process ${p.id}`);
    }
    this.save();
    return adopted;
  }

  async start(req: StartRequest): Promise<AgentProcess> {
    if (this.closed) throw new StartRefused('the agent is shutting down', 'tooMany');
    if (this.runningCount >= this.maxProcesses) {
      throw new StartRefused(`too many processes: ${this.maxProcesses} already running (the agent's limit)`, 'tooMany');
    }
    const stopSignal = parseSignal(req.stop_signal);
    if (!stopSignal) throw new StartRefused(`unknown stop_signal ${JSON.stringify(req.stop_signal)}`, 'badRequest');
    const [file, ...args] = req.argv as [string, ...string[]];
    const cwd = req.cwd ?? null;
    if (cwd !== null && !existsSync(cwd)) {
      throw new StartRefused(`working directory ${JSON.stringify(cwd)} does not exist`, 'spawnFailed');
    }
    const env: NodeJS.ProcessEnv = { ...process.env, ...(req.env ?? {}) };
    // Reserve the slot before the await so that a flood of starts cannot overshoot the limit.
    const id = randomUUID();
    const placeholder = { running: true } as AgentProcess;
    const reserve = { info: placeholder } as Entry;
    this.entries.set(id, reserve);
    let child: ChildProcess;
    const fds: number[] = [];
    try {
      for (const stream of STREAMS) fds.push(openForChild(this.outputPath(id, stream)));
      child = spawn(file, args, { cwd: cwd ?? undefined, env, detached: true, stdio: ['ignore', fds[0], fds[1]] });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', (err) =>
          reject(new StartRefused(`cannot run ${JSON.stringify(file)}: ${err.message}`, 'spawnFailed')),
        );
      });
    } catch (err) {
      this.entries.delete(id);
      for (const stream of STREAMS) rmSync(this.outputPath(id, stream), { force: true });
      throw err;
    } finally {
      // The child has its copies; the agent reads the files through its own descriptors.
      for (const fd of fds) closeSync(fd);
    }
    const pid = child.pid as number;
    // The agent may exit while its processes run on (they are re-adopted): they must not keep
    // its event loop alive.
    child.unref();
    const info: AgentProcess = {
      id,
      name: req.name,
      pid,
      argv: req.argv,
      cwd,
      startedAt: new Date().toISOString(),
      adopted: false,
      running: true,
      exit: null,
    };
    const entry: Entry = {
      info,
      pgid: pid,
      startTime: readStat(pid)?.startTime ?? '',
      bootId: bootId(),
      stopSignal,
      stopTimeoutMs: req.stop_timeout_ms ?? 10_000,
      ring: new OutputRing(),
      files: [],
      stderrLines: new HeadTailLines(),
      exited: Promise.resolve() as unknown as Promise<ExitRecord>,
      stopping: null,
    };
    this.attachOutput(entry);
    entry.exited = new Promise<ExitRecord>((resolve) => {
      child.once('exit', (code, signal) => {
        // Everything it wrote is in its files now: read the rest, then report the exit.
        void this.finishOutput(entry).then(() => {
          const tail = entry.stderrLines.summary();
          const base = describeExit(code, signal);
          resolve({ code, signal, reason: tail ? `${base}: ${tail}` : base, at: new Date().toISOString() });
        });
      });
    });
    this.entries.set(id, entry);
    this.watch(entry);
    this.save();
    this.opts.log.info(
      { event_type: 'agent_process_started', id, name: req.name, pid, argv: req.argv },
      `started ${req.name} (pid ${pid})`,
    );
    return { ...info };
  }

  /** Stop a process group (stop_signal, SIGKILL after stop_timeout_ms); resolves when it is gone. */
  async stop(id: string): Promise<AgentProcess | null> {
    const e = this.entries.get(id);
    if (!e?.info.id) return null;
    if (e.info.running) {
      e.stopping ??= stopGroup(e.pgid, e.stopSignal, e.stopTimeoutMs, e.exited);
      await e.stopping;
      await e.exited;
    }
    return { ...e.info };
  }

  private watch(entry: Entry): void {
    void entry.exited.then((exit) => {
      entry.info.running = false;
      entry.info.exit = exit;
      this.trimFinished();
      if (!this.closed) this.save();
      this.opts.log.info(
        { event_type: 'agent_process_exited', id: entry.info.id, ...exit },
        `${entry.info.name}: ${exit.reason}`,
      );
      this.opts.onExit(entry.info.id, exit);
    });
  }

  private trimFinished(): void {
    const finished = [...this.entries.values()].filter((e) => e.info.id && !e.info.running);
    for (const e of finished.slice(0, Math.max(0, finished.length - MAX_FINISHED))) this.entries.delete(e.info.id);
  }

  private async pollExit(pid: number, startTime: string): Promise<ExitRecord> {
    for (;;) {
      await sleep(ADOPTED_POLL_MS, undefined, { ref: false });
      const st = readStat(pid);
      if (!st || st.state === 'Z' || st.startTime !== startTime) {
        return { code: null, signal: null, reason: `adopted process ${pid} ended`, at: new Date().toISOString() };
      }
    }
  }

  /** Write the running processes (atomic rename; 0600). */
  private save(): void {
    const rows: PersistedEntry[] = [];
    for (const e of this.entries.values()) {
      if (!e.info.id || !e.info.running) continue;
      rows.push({
        id: e.info.id,
        name: e.info.name,
        pid: e.info.pid,
        pgid: e.pgid,
        startTime: e.startTime,
        bootId: e.bootId,
        argv: e.info.argv,
        cwd: e.info.cwd,
        startedAt: e.info.startedAt,
        stopSignal: e.stopSignal,
        stopTimeoutMs: e.stopTimeoutMs,
        offsets: this.offsetsOf(e),
      });
    }
    const file = join(this.opts.stateDir, STATE_FILE);
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify({ processes: rows }, null, 2)}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
  }

  private offsetsOf(e: Entry): Partial<Record<StreamName, number>> {
    const out: Partial<Record<StreamName, number>> = {};
    for (const stream of STREAMS) {
      const f = e.files.find((x) => x.path === this.outputPath(e.info.id, stream));
      if (f) out[stream] = f.offset;
    }
    return out;
  }

  /**
   * The agent stops: children keep running (re-adopted by the next agent, which reads their
   * output on from the offsets written now); state is written.
   */
  close(): void {
    if (this.closed) return;
    for (const e of this.entries.values()) for (const f of e.files ?? []) f.close();
    this.save();
    this.closed = true;
  }
}
