/**
 * Reachability of a machine with an agent (SPEC §15): the machine is up for Hestia when its
 * agent answers `GET /v1/health` with our token. An agent that does not answer, or refuses the
 * token, makes the machine unavailable for placement (power.ts turns a failed probe into a
 * wake, or into a MachineUnavailableError naming this detail).
 */
import type { MachineAgentConfig } from '../config/schema.ts';
import { channelFor } from '../remote/agent/channel.ts';

/** power.ts's ReachResult (same shape; declared here so the two modules do not import each other). */
export interface AgentReach {
  ok: boolean;
  via: string;
  detail: string;
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
    return { ok: false, via, detail: msg.startsWith(client.label) ? msg.slice(client.label.length + 1) : msg };
  }
}
