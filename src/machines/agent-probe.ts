/**
 * Reachability of a machine with an agent (SPEC §15): the machine is up for Hestia when its
 * agent answers `GET /v1/health` with our token. An agent that does not answer, or refuses the
 * token, makes the machine unavailable for placement (power.ts turns a failed probe into a
 * wake, or into a MachineUnavailableError naming this detail). An agent that *answers* but
 * refuses (wrong token) is not woken: the machine is up, and a wake would only cost its
 * wait_timeout_ms before failing with the same refusal.
 */
import type { MachineAgentConfig } from '../config/schema.ts';
import { channelFor } from '../remote/agent/channel.ts';
import { AgentError } from '../remote/agent/client.ts';

/** power.ts's ReachResult (same shape; declared here so the two modules do not import each other). */
export interface AgentReach {
  ok: boolean;
  via: string;
  detail: string;
  /**
   * The agent answered but refused the request (wrong token, or an error status): the machine
   * is up, so waking it would change nothing (power.ts fails at once with this detail).
   */
  answered?: boolean;
}

export async function probeAgent(
  machineId: string,
  agent: MachineAgentConfig,
  signal?: AbortSignal,
): Promise<AgentReach> {
  const origin = new URL(agent.url).origin;
  const { client } = channelFor(agent, `agent of machine '${machineId}' (${origin})`);
  const via = `agent ${origin}`;
  try {
    const h = await client.health(signal);
    return { ok: true, via, detail: `hestia agent ${h.version}, ${h.processes} process(es)` };
  } catch (err) {
    signal?.throwIfAborted();
    const msg = err instanceof Error ? err.message : String(err);
    const detail = msg.startsWith(client.label) ? msg.slice(client.label.length + 1) : msg;
    const answered = err instanceof AgentError && (err.kind === 'unauthorized' || err.kind === 'refused');
    return { ok: false, via, detail, ...(answered ? { answered } : {}) };
  }
}
