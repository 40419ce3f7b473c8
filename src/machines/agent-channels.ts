/**
 * The state of each agent's event channel, surfaced (SPEC §15): the gateway holds one pushed
 * channel per agent (remote/agent/channel.ts) while a process runs there. When that channel is
 * lost (the agent stopped, crashed, or the network was cut) it is an event — `agent_unreachable`
 * `{machine, url, reason}` — and when it comes back, `agent_reconnected` `{machine, url,
 * downMs}`; `GET /v1/machines` shows the channel's state per machine (`agent.channel`:
 * `idle` = nothing to watch there, `connecting`, `connected`, `lost`, with `lastError`, `since`).
 *
 * One event per outage: the channel's retries (backoff up to 5 s) while the agent stays down are
 * not events. Machines are (re)subscribed from the current config on every `sync()` (the
 * placement calls it on each decision and listing, so a reload's new agents are followed).
 */
import type { Config } from '../config/schema.ts';
import type { EventBus } from '../observability/events.ts';
import { type ChannelStatus, channelFor } from '../remote/agent/channel.ts';

export interface AgentChannelInfo {
  url: string;
  channel: ChannelStatus['state'];
  lastError: string | null;
  since: string;
}

interface Followed {
  key: string;
  off: () => void;
  /** When the current outage began (epoch ms), null while not lost. */
  lostAt: number | null;
}

export function agentLabel(machineId: string, url: string): string {
  return `agent of machine '${machineId}' (${new URL(url).origin})`;
}

export class AgentChannelMonitor {
  private readonly followed = new Map<string, Followed>();

  constructor(
    private readonly getConfig: () => Config,
    private readonly bus: EventBus,
  ) {}

  /** Follow the channel of every machine with an agent in the current config. */
  sync(): void {
    const machines = this.getConfig().machines;
    for (const [id, f] of this.followed) {
      const agent = machines[id]?.agent;
      if (!agent || this.keyOf(agent) !== f.key) {
        f.off();
        this.followed.delete(id);
      }
    }
    for (const [id, m] of Object.entries(machines)) {
      if (!m.agent || this.followed.has(id)) continue;
      const url = m.agent.url;
      const ch = channelFor(m.agent, agentLabel(id, url));
      const f: Followed = { key: this.keyOf(m.agent), off: () => {}, lostAt: null };
      f.off = ch.onState((s) => this.onState(id, url, f, s));
      this.followed.set(id, f);
    }
  }

  private keyOf(agent: { url: string; token: string; ca_file?: string | undefined }): string {
    return JSON.stringify([agent.url, agent.token, agent.ca_file ?? null]);
  }

  private onState(machineId: string, url: string, f: Followed, s: ChannelStatus): void {
    if (s.state === 'lost' && f.lostAt === null) {
      f.lostAt = Date.now();
      this.bus.publish('agent_unreachable', null, { machine: machineId, url, reason: s.lastError }, machineId);
    } else if (s.state === 'connected' && f.lostAt !== null) {
      const downMs = Date.now() - f.lostAt;
      f.lostAt = null;
      this.bus.publish('agent_reconnected', null, { machine: machineId, url, downMs }, machineId);
    } else if (s.state === 'idle') {
      // Nothing watched any more there: no outage to report the end of.
      f.lostAt = null;
    }
  }

  /** The channel's state for `GET /v1/machines`; null for a machine without an agent. */
  describe(machineId: string): AgentChannelInfo | null {
    const agent = this.getConfig().machines[machineId]?.agent;
    if (!agent) return null;
    const s = channelFor(agent, agentLabel(machineId, agent.url)).state;
    return { url: agent.url, channel: s.state, lastError: s.lastError, since: s.since };
  }

  close(): void {
    for (const f of this.followed.values()) f.off();
    this.followed.clear();
  }
}
