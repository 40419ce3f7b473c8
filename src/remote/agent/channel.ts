/**
 * The gateway's event channel to one agent (SPEC §15): a long-lived `GET /v1/events` NDJSON
 * stream that pushes process exits (and output lines) the moment they happen.
 *
 * - Reconnects with backoff (RECONNECT_MIN_MS doubling to RECONNECT_MAX_MS, reset by a
 *   connection that delivered its `hello`).
 * - A channel that has been silent for CHANNEL_DEAD_MS (the agent sends a heartbeat every
 *   HEARTBEAT_MS) is declared lost and reconnected: a dead agent or a cut network is noticed
 *   within seconds, not at the next request.
 * - Every (re)connection starts with `hello`, the agent's list of processes: a watched process
 *   listed as finished, or not listed at all (the agent restarted without it), settles its
 *   watch; one listed as running stays watched (the agent re-adopted it). So an exit that
 *   happened while the channel was down is never missed.
 * - `watch(id)` before or after the exit is seen: recent exits are remembered (bounded).
 * - Output lines are pushed too and handed to the watcher's `onOutput` (the gateway logs them).
 *
 * One channel per agent endpoint, shared by every service placed there (`channelFor`); it
 * connects while something is watched and closes when nothing is.
 */
import { createInterface } from 'node:readline';
import { AgentClient, type AgentEndpoint } from './client.ts';
import { type AgentEvent, CHANNEL_DEAD_MS, type ExitRecord, type OutputLine } from './protocol.ts';

const RECONNECT_MIN_MS = 200;
const RECONNECT_MAX_MS = 5_000;
const RECENT_EXITS = 256;
/**
 * Output lines of processes nobody watches yet, kept for a watch that comes just after (a start's
 * answer and its first lines race: the agent may push a line before the gateway has the id).
 * Bounded: the most recent UNCLAIMED_IDS processes, UNCLAIMED_LINES lines each.
 */
const UNCLAIMED_IDS = 32;
const UNCLAIMED_LINES = 200;
/** Bound on one NDJSON line (an output line is at most 16 KiB of text). */
const MAX_EVENT_LINE = 256 * 1024;

export type ChannelState = 'idle' | 'connecting' | 'connected' | 'lost';

export interface ChannelStatus {
  state: ChannelState;
  /** Why the last connection failed or was lost. */
  lastError: string | null;
  since: string;
}

interface Watch {
  resolve(exit: ExitRecord): void;
  promise: Promise<ExitRecord>;
  onOutput?: (line: OutputLine) => void;
}

export class AgentChannel {
  readonly client: AgentClient;
  private readonly watches = new Map<string, Watch>();
  private readonly recentExits = new Map<string, ExitRecord>();
  private readonly unclaimed = new Map<string, OutputLine[]>();
  private ac: AbortController | null = null;
  private deadTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private backoff = RECONNECT_MIN_MS;
  private pinned = false;
  private status: ChannelStatus = { state: 'idle', lastError: null, since: new Date().toISOString() };
  private readonly stateListeners = new Set<(s: ChannelStatus) => void>();

  constructor(endpoint: AgentEndpoint, label?: string) {
    this.client = new AgentClient(endpoint, label);
  }

  get state(): ChannelStatus {
    return { ...this.status };
  }

  onState(fn: (s: ChannelStatus) => void): () => void {
    this.stateListeners.add(fn);
    return () => this.stateListeners.delete(fn);
  }

  /** Settles with the process's exit, however the channel learns of it. Never rejects. */
  watch(id: string, onOutput?: (line: OutputLine) => void): Promise<ExitRecord> {
    const seen = this.recentExits.get(id);
    if (seen) {
      const early = this.unclaimed.get(id);
      this.unclaimed.delete(id);
      if (early && onOutput) for (const line of early) onOutput(line);
      return Promise.resolve(seen);
    }
    const existing = this.watches.get(id);
    if (existing) return existing.promise;
    let resolve!: (e: ExitRecord) => void;
    const promise = new Promise<ExitRecord>((r) => {
      resolve = r;
    });
    this.watches.set(id, { resolve, promise, ...(onOutput ? { onOutput } : {}) });
    // Lines pushed before this watch (right after the start) are delivered first.
    const early = this.unclaimed.get(id);
    this.unclaimed.delete(id);
    if (early && onOutput) for (const line of early) onOutput(line);
    this.ensureConnected();
    return promise;
  }

  unwatch(id: string): void {
    this.watches.delete(id);
    if (this.watches.size === 0 && !this.pinned) this.disconnect();
  }

  /**
   * Connect (if not connected) and resolve once connected, without keeping the channel open
   * when nothing is watched afterwards: a start's first output lines are then all delivered
   * (kept for its watch, `unclaimed`). Never rejects; resolves only once connected.
   */
  connected(): Promise<void> {
    this.ensureConnected();
    if (this.status.state === 'connected') return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.onState((s) => {
        if (s.state !== 'connected') return;
        off();
        resolve();
      });
    });
  }

  /**
   * Keep the channel open even with nothing watched, and resolve once it is connected (its
   * `hello` received): output lines of processes started after this are all delivered.
   */
  ready(): Promise<void> {
    this.pinned = true;
    return this.connected();
  }

  close(): Promise<void> {
    this.pinned = false;
    this.watches.clear();
    this.disconnect();
    return this.client.close();
  }

  private setState(state: ChannelState, lastError: string | null = this.status.lastError): void {
    if (state === this.status.state && lastError === this.status.lastError) return;
    this.status = { state, lastError, since: new Date().toISOString() };
    for (const fn of this.stateListeners) fn(this.state);
  }

  private ensureConnected(): void {
    if (this.ac || this.retryTimer) return;
    void this.connect();
  }

  private disconnect(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.deadTimer) clearTimeout(this.deadTimer);
    this.deadTimer = null;
    this.ac?.abort();
    this.ac = null;
    this.setState('idle');
  }

  private armDeadTimer(onDead: () => void): void {
    if (this.deadTimer) clearTimeout(this.deadTimer);
    this.deadTimer = setTimeout(onDead, CHANNEL_DEAD_MS);
    this.deadTimer.unref();
  }

  private async connect(): Promise<void> {
    const ac = new AbortController();
    this.ac = ac;
    this.setState('connecting');
    const lost = (why: string) => {
      if (this.ac !== ac) return;
      ac.abort();
      this.ac = null;
      if (this.deadTimer) clearTimeout(this.deadTimer);
      this.deadTimer = null;
      this.setState('lost', why);
      if (this.watches.size === 0 && !this.pinned) return this.setState('idle');
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        void this.connect();
      }, this.backoff);
      this.retryTimer.unref();
      this.backoff = Math.min(RECONNECT_MAX_MS, this.backoff * 2);
    };
    let body: NodeJS.ReadableStream & { destroy(): void };
    try {
      body = await this.client.events(true, ac.signal);
    } catch (err) {
      lost(err instanceof Error ? err.message : String(err));
      return;
    }
    if (this.ac !== ac) {
      body.destroy();
      return;
    }
    this.armDeadTimer(() => lost(`${this.client.label}: event channel silent for ${CHANNEL_DEAD_MS} ms`));
    body.on('error', () => {});
    const rl = createInterface({ input: body, crlfDelay: Number.POSITIVE_INFINITY });
    // An aborted stream (our own disconnect, or the agent gone) ends the channel, never the process.
    rl.on('error', () => {});
    rl.on('line', (line) => {
      if (this.ac !== ac) return;
      this.armDeadTimer(() => lost(`${this.client.label}: event channel silent for ${CHANNEL_DEAD_MS} ms`));
      if (line.length > MAX_EVENT_LINE) return;
      let ev: AgentEvent;
      try {
        ev = JSON.parse(line) as AgentEvent;
      } catch {
        return;
      }
      this.onEvent(ev);
    });
    rl.on('close', () => lost(`${this.client.label}: event channel closed`));
  }

  private onEvent(ev: AgentEvent): void {
    switch (ev.type) {
      case 'hello': {
        this.backoff = RECONNECT_MIN_MS;
        this.setState('connected', null);
        const listed = new Map(ev.processes.map((p) => [p.id, p]));
        for (const id of [...this.watches.keys()]) {
          const p = listed.get(id);
          if (p?.running) continue;
          this.settle(
            id,
            p?.exit ?? {
              code: null,
              signal: null,
              reason: `the agent no longer knows process ${id} (it restarted and the process was gone)`,
              at: new Date().toISOString(),
            },
          );
        }
        return;
      }
      case 'exit':
        this.settle(ev.id, ev.exit);
        return;
      case 'output': {
        const w = this.watches.get(ev.id);
        if (w) w.onOutput?.(ev.line);
        else this.keepUnclaimed(ev.id, ev.line);
        return;
      }
      default:
        return;
    }
  }

  private keepUnclaimed(id: string, line: OutputLine): void {
    let lines = this.unclaimed.get(id);
    if (!lines) {
      if (this.unclaimed.size >= UNCLAIMED_IDS) {
        const oldest = this.unclaimed.keys().next().value;
        if (oldest !== undefined) this.unclaimed.delete(oldest);
      }
      lines = [];
      this.unclaimed.set(id, lines);
    }
    lines.push(line);
    if (lines.length > UNCLAIMED_LINES) lines.shift();
  }

  private settle(id: string, exit: ExitRecord): void {
    this.recentExits.set(id, exit);
    if (this.recentExits.size > RECENT_EXITS) {
      const oldest = this.recentExits.keys().next().value;
      if (oldest !== undefined) this.recentExits.delete(oldest);
    }
    const w = this.watches.get(id);
    if (!w) return;
    this.watches.delete(id);
    w.resolve(exit);
    if (this.watches.size === 0 && !this.pinned) this.disconnect();
  }
}

const channels = new Map<string, AgentChannel>();

/** The shared channel of an agent endpoint (same url, token and CA → same channel). */
export function channelFor(endpoint: AgentEndpoint, label?: string): AgentChannel {
  const key = JSON.stringify([endpoint.url, endpoint.token, endpoint.ca_file ?? null]);
  let ch = channels.get(key);
  if (!ch) {
    ch = new AgentChannel(endpoint, label);
    channels.set(key, ch);
  }
  return ch;
}

/** Close every channel (gateway shutdown, tests). */
export async function closeAllChannels(): Promise<void> {
  const all = [...channels.values()];
  channels.clear();
  await Promise.all(all.map((c) => c.close()));
}
