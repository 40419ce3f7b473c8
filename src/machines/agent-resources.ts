/**
 * Live resources of machines with an agent (SPEC §15), and `capacity: {gpu_mem_mb: auto}`.
 *
 * - The last report of each agent (`GET /v1/resources`: CPU, memory, per-GPU memory) is kept;
 *   it is refreshed before every start on the machine (`refresh`, awaited by the placement) and
 *   in the background when `GET /v1/machines` is asked (at most once a second per machine), so
 *   the list shows what the agent last said, with its time.
 * - `gpu_mem_mb: auto` = the reported free GPU memory (all GPUs) + what Hestia's own *hot*
 *   services there hold (their memory is already in the report's "used"). The ledger subtracts
 *   every claim from that, so what is left for a new start is the free memory minus what the
 *   services still starting will take. No report yet (or no GPU): 0, and the start's error says
 *   so.
 */
import type { Config } from '../config/schema.ts';
import { channelFor } from '../remote/agent/channel.ts';
import { type AgentResources, freeGpuMemMb } from '../remote/agent/protocol.ts';
import type { Resources } from './capacity.ts';

const BACKGROUND_REFRESH_MS = 1_000;

export interface ResourceReport {
  report: AgentResources | null;
  error: string | null;
  at: string | null;
}

export class AgentResourceCache {
  private readonly reports = new Map<string, ResourceReport>();
  private readonly lastAsked = new Map<string, number>();

  constructor(private readonly getConfig: () => Config) {}

  latest(machineId: string): ResourceReport | null {
    return this.reports.get(machineId) ?? null;
  }

  /** Ask the machine's agent now (no agent: nothing to do). Never rejects. */
  async refresh(machineId: string, signal?: AbortSignal): Promise<ResourceReport | null> {
    const agent = this.getConfig().machines[machineId]?.agent;
    if (!agent) return null;
    this.lastAsked.set(machineId, Date.now());
    const { client } = channelFor(agent, `agent of machine '${machineId}' (${new URL(agent.url).origin})`);
    let next: ResourceReport;
    try {
      const report = await client.resources(signal);
      next = { report, error: null, at: report.at };
    } catch (err) {
      const prev = this.reports.get(machineId);
      next = {
        report: prev?.report ?? null,
        error: err instanceof Error ? err.message : String(err),
        at: prev?.at ?? null,
      };
    }
    this.reports.set(machineId, next);
    return next;
  }

  /** A background refresh, at most once a second per machine (for GET /v1/machines). */
  refreshSoon(machineId: string): void {
    if (!this.getConfig().machines[machineId]?.agent) return;
    if (Date.now() - (this.lastAsked.get(machineId) ?? 0) < BACKGROUND_REFRESH_MS) return;
    void this.refresh(machineId);
  }

  /**
   * The machine's capacity with `auto` values resolved. `heldByHot` is the sum of what the
   * machine's hot services hold (their memory is in the report's "used").
   */
  capacity(machineId: string, heldByHot: Resources): Resources {
    const configured = this.getConfig().machines[machineId]?.capacity ?? {};
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(configured)) {
      if (v !== 'auto') {
        out[k] = v;
        continue;
      }
      const report = this.reports.get(machineId)?.report;
      const free = report ? freeGpuMemMb(report) : null;
      out[k] = free === null ? 0 : free + (heldByHot[k] ?? 0);
    }
    return out;
  }

  hasAuto(machineId: string): boolean {
    return Object.values(this.getConfig().machines[machineId]?.capacity ?? {}).includes('auto');
  }
}
