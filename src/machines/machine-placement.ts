/**
 * The machines-aware Placement (the seam in services/placement.ts): which machines to try for
 * a service, in order (config/machine-order.ts); before attempts on one, make it ready — awake
 * (power.ts) and with room (capacity.ts, stopping idle services when needed); and the view
 * of all machines for `GET /v1/machines`.
 *
 * Order inside `prepare`, and why:
 * 1. a `requires` larger than the machine's whole capacity fails at once (no wake for nothing);
 * 2. wake / reachability (a start never evicts services on a machine it then cannot reach; when
 *    the check runs beside an ssh launch, power.ts `checkBeforeLaunch`, only a reservation that
 *    fits at once is taken before its answer);
 * 3. the reservation. When it fits, it is taken synchronously. When it does not, the idle
 *    services there are asked their busy_check (async) and then, in one synchronous step on the
 *    state as it is *then*, the victims are chosen (LRU, hot, nothing in flight or queued, not
 *    busy), told to stop through their own lifecycle (`evict`, which re-checks the same
 *    conditions), and the claim is recorded. The victims' claims stay until they are cold, so
 *    the capacity is never booked twice; the start proceeds once they are released.
 */

import { LOCAL_MACHINE_ID, machineOrder, placedMachine } from '../config/machine-order.ts';
import type { Config, ServiceConfig } from '../config/schema.ts';
import type { PlacedMachine } from '../launchers/types.ts';
import type { EventBus } from '../observability/events.ts';
import type { Logger } from '../observability/logger.ts';
import type { BusyResult } from '../services/busy-check.ts';
import { MachineUnavailableError, type Placement, type PlacementClaim } from '../services/placement.ts';
import { type AgentChannelInfo, AgentChannelMonitor } from './agent-channels.ts';
import { AgentResourceCache, type ResourceReport } from './agent-resources.ts';
import {
  CapacityLedger,
  type Claim,
  chooseVictims,
  exceedsTotal,
  formatResources,
  type Resources,
  shortfall,
  type VictimCandidate,
} from './capacity.ts';
import { type PowerInfo, PowerManager, raceSignal } from './power.ts';

/** What the capacity logic needs of another service's runtime (ServiceRuntime implements it). */
export interface EvictableService {
  readonly id: string;
  readonly config: ServiceConfig;
  readonly state: string;
  /**
   * Its last use (epoch ms) when it could be stopped to make room right now — hot, nothing in
   * flight, nothing queued — else null.
   */
  evictionCandidate(): { lastUsedAt: number } | null;
  /** Its busy_check answer, or null when it has none. Never rejects. */
  busyCheck(): Promise<BusyResult | null>;
  /** Its last use when it could be swapped out once its requests end (hot or starting), else null. */
  swapCandidate(): { lastUsedAt: number } | null;
  /** Admit nothing new, serve what is in flight and queued now, then stop (cause `evicted`); false if no candidate. */
  evictWhenDrained(details: Record<string, unknown>): boolean;
  /** Give up a pending `evictWhenDrained` (the waiting start gave up). */
  cancelEviction(): void;
  /**
   * Stop it through its own lifecycle (`hot → stopping`, cause `evicted`) if it is still a
   * candidate; synchronous decision, returns whether the stop began.
   */
  evict(details: Record<string, unknown>): boolean;
}

/** One machine in `GET /v1/machines` (SPEC §2). */
export interface MachineInfo {
  id: string;
  host: string;
  tags: string[];
  capacity: Resources;
  /** Sum of what is allocated (including starts that reserved). */
  used: Resources;
  /** capacity − used per declared resource (negative while evicted services are still stopping). */
  free: Resources;
  allocation: Array<{ serviceId: string; requires: Resources; state: string | null; since: string }>;
  power: PowerInfo;
  /** Machines with an agent: its last resource report (CPU, memory, GPUs), SPEC §15. */
  resources?: ResourceReport;
  /** Machines with an agent: its URL and the state of the gateway's event channel to it. */
  agent?: AgentChannelInfo;
}

export interface MachinePlacementOptions {
  getConfig: () => Config;
  bus: EventBus;
  log: Logger;
  /** The services' runtimes, for eviction. */
  services: () => Iterable<EvictableService>;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class MachinePlacement implements Placement {
  readonly ledger: CapacityLedger;
  readonly power: PowerManager;
  /** Agents' resource reports and `auto` capacities (SPEC §15). */
  readonly resources: AgentResourceCache;
  /** Agents' event channels: lost / reconnected events and their state in the list. */
  readonly agentChannels: AgentChannelMonitor;
  /**
   * A start (its abort signal: one per start, across its machines) that moved on from a machine
   * full of busy services, to the machine it chose (`laterMachine`): machines of its list in
   * between are passed over without being woken.
   */
  private readonly movingTo = new WeakMap<AbortSignal, string>();

  constructor(private readonly opts: MachinePlacementOptions) {
    const { getConfig } = opts;
    this.resources = new AgentResourceCache(getConfig);
    // Followed from the first placement decision or listing on (the config may not be
    // readable while the gateway is being built).
    this.agentChannels = new AgentChannelMonitor(getConfig, opts.bus);
    this.ledger = new CapacityLedger(
      (id) => this.resources.capacity(id, this.heldByHot(id)),
      (id) => this.power.update(id),
    );
    this.power = new PowerManager({
      getConfig,
      bus: opts.bus,
      log: opts.log,
      claimCount: (id) => this.ledger.count(id),
    });
  }

  candidates(serviceId: string): PlacedMachine[] {
    this.agentChannels.sync();
    const config = this.opts.getConfig();
    const svc = config.services[serviceId];
    // A service removed by a reload still finishing its stop: its machine is not re-decided.
    if (!svc) return [placedMachine(config, LOCAL_MACHINE_ID)];
    return machineOrder(svc, config).ids.map((id) => placedMachine(config, id));
  }

  async prepare(serviceId: string, machine: PlacedMachine, signal: AbortSignal): Promise<PlacementClaim> {
    const requires = this.opts.getConfig().services[serviceId]?.requires ?? {};
    const target = this.movingTo.get(signal);
    if (target !== undefined) {
      if (target !== machine.id && this.isBefore(serviceId, machine.id, target)) {
        const why = this.isAsleep(machine.id) ? 'is asleep and was not woken' : 'has no room';
        throw new MachineUnavailableError(
          'no_capacity',
          machine.id,
          `machine '${machine.id}' ${why} for service '${serviceId}': machine '${target}' is awake and has room (stopping idle services at most)`,
          { asleep: this.isAsleep(machine.id), preferred: target },
        );
      }
      this.movingTo.delete(signal);
    }
    const release = this.power.hold(machine.id);
    try {
      // `auto` capacity: what the agent reports now (an agent that does not answer fails the
      // reachability check below with the reason).
      if (this.resources.hasAuto(machine.id)) await this.resources.refresh(machine.id, signal);
      const over = exceedsTotal(this.ledger.capacity(machine.id), requires);
      if (Object.keys(over).length > 0) {
        throw new MachineUnavailableError(
          'no_capacity',
          machine.id,
          `service '${serviceId}' requires ${formatResources(requires)} but machine '${machine.id}' has only ${formatResources(this.ledger.capacity(machine.id))} in total`,
          { requires, capacity: this.ledger.capacity(machine.id) },
        );
      }
      const launcher = this.opts.getConfig().services[serviceId]?.launcher;
      const overSsh = launcher?.type === 'ssh' && (launcher.machine ?? machine.id) === machine.id;
      const beside = await this.power.checkBeforeLaunch(machine.id, serviceId, signal, overSsh);
      if (beside) {
        // The check runs beside the launch only when the room is there at once: making room
        // (stopping idle services, waiting for busy ones) waits for the machine's answer first.
        const now = this.ledger.tryReserve(machine.id, serviceId, requires);
        if (now.ok) return { release: () => now.claim.release(), unreachable: beside.verdict };
        const unreachable = await raceSignal(beside.verdict, signal);
        if (unreachable) throw unreachable;
      }
      return await this.reserve(serviceId, machine.id, requires, signal);
    } finally {
      release();
    }
  }

  /** A service found already running (boot re-adoption, status probe) holds its capacity too. */
  adopt(serviceId: string, machine: PlacedMachine): PlacementClaim {
    const requires = this.opts.getConfig().services[serviceId]?.requires ?? {};
    return this.ledger.forceReserve(machine.id, serviceId, requires);
  }

  /** What the machine's hot services hold (for `auto` capacity: already in the agent's "used"). */
  private heldByHot(machineId: string): Resources {
    const out: Record<string, number> = {};
    for (const c of this.ledger?.claims(machineId) ?? []) {
      if (this.runtimeOf(c.serviceId)?.state !== 'hot') continue;
      for (const [k, v] of Object.entries(c.requires)) out[k] = (out[k] ?? 0) + v;
    }
    return out;
  }

  private runtimeOf(serviceId: string): EvictableService | undefined {
    for (const s of this.opts.services()) if (s.id === serviceId) return s;
    return undefined;
  }

  /** Services on the machine (other than `except`) that could be stopped now, with their claims. */
  private idleOn(machineId: string, except: string): Array<VictimCandidate & { svc: EvictableService; claim: Claim }> {
    const out: Array<VictimCandidate & { svc: EvictableService; claim: Claim }> = [];
    for (const claim of this.ledger.claims(machineId)) {
      if (claim.serviceId === except) continue;
      const svc = this.runtimeOf(claim.serviceId);
      const c = svc?.evictionCandidate();
      if (!svc || !c) continue;
      out.push({ serviceId: svc.id, requires: claim.requires, lastUsedAt: c.lastUsedAt, svc, claim });
    }
    return out;
  }

  private async reserve(
    serviceId: string,
    machineId: string,
    requires: Resources,
    signal: AbortSignal,
  ): Promise<Claim> {
    const first = this.ledger.tryReserve(machineId, serviceId, requires);
    if (first.ok) return first.claim;

    // Ask the idle services with a busy_check first (the only async part)...
    const asked = this.idleOn(machineId, serviceId);
    const busy = new Map<string, string>();
    await raceSignal(
      Promise.all(
        asked.map(async (c) => {
          const r = await c.svc.busyCheck();
          if (r?.busy) busy.set(c.serviceId, r.detail);
        }),
      ),
      signal,
    );

    // ...then decide and act in one synchronous step, on the state as it is now.
    const again = this.ledger.tryReserve(machineId, serviceId, requires);
    if (again.ok) return again.claim;
    const askedIds = new Set(asked.map((c) => c.serviceId));
    const candidates = this.idleOn(machineId, serviceId).filter(
      // A service that became idle after the busy checks were asked is not stopped unasked.
      (c) => !busy.has(c.serviceId) && (askedIds.has(c.serviceId) || !c.svc.config.busy_check),
    );
    const victims = chooseVictims(candidates, again.short);
    if (!victims) return this.reserveBehindBusy(serviceId, machineId, requires, again.short, busy, signal);

    const claim = this.ledger.forceReserve(machineId, serviceId, requires);
    const waitFor: Promise<void>[] = [];
    for (const id of victims) {
      const c = candidates.find((x) => x.serviceId === id);
      if (!c) continue;
      const idleMs = Date.now() - c.lastUsedAt;
      if (!c.svc.evict({ forService: serviceId, machineId, idleMs })) {
        // Cannot happen (same tick as idleOn); never book capacity that was not freed.
        claim.release();
        throw this.noCapacity(serviceId, machineId, requires, again.short, busy);
      }
      this.opts.bus.publish(
        'capacity_eviction',
        id,
        {
          victim: id,
          forService: serviceId,
          freed: c.requires,
          idleMs,
          lastUsedAt: new Date(c.lastUsedAt).toISOString(),
        },
        machineId,
      );
      waitFor.push(c.claim.released);
    }
    try {
      // The start proceeds once the victims are cold (their stop released their claims).
      await raceSignal(Promise.all(waitFor), signal);
    } catch (err) {
      claim.release();
      throw err;
    }
    return claim;
  }

  /**
   * Swapping (SPEC §6, docs/models.md): nothing idle frees enough, but stopping services that
   * are busy with requests would. Unless a later machine of the service's list fits with idle
   * stops (then that one is used: this throws to move on, and machines in between that are
   * asleep are passed over when the chosen one is awake — `laterMachine`), or `capacity_wait_ms` is 0: the
   * claim is taken now, the chosen holders are told to make room once their in-flight requests
   * (and those already queued) are served (`evictWhenDrained`: they admit nothing new meanwhile,
   * new requests wait behind the swap), and the start proceeds when their claims are released.
   * After `capacity_wait_ms` (default `start_timeout_ms`) the holders go back to normal and the
   * start fails with no_capacity (503 HESTIA_NO_CAPACITY).
   */
  private async reserveBehindBusy(
    serviceId: string,
    machineId: string,
    requires: Resources,
    short: Resources,
    busy: Map<string, string>,
    signal: AbortSignal,
  ): Promise<Claim> {
    const cfg = this.opts.getConfig().services[serviceId];
    const waitMs = cfg?.capacity_wait_ms ?? cfg?.start_timeout_ms ?? 0;
    const later = this.laterMachine(serviceId, machineId, requires);
    if (later !== null) {
      this.movingTo.set(signal, later);
      throw this.noCapacity(serviceId, machineId, requires, short, busy, `machine '${later}' has room`);
    }
    if (waitMs === 0) throw this.noCapacity(serviceId, machineId, requires, short, busy);
    const candidates: Array<VictimCandidate & { svc: EvictableService; claim: Claim }> = [];
    for (const claim of this.ledger.claims(machineId)) {
      if (claim.serviceId === serviceId || busy.has(claim.serviceId)) continue;
      const svc = this.runtimeOf(claim.serviceId);
      const c = svc?.swapCandidate();
      if (!svc || !c) continue;
      candidates.push({ serviceId: svc.id, requires: claim.requires, lastUsedAt: c.lastUsedAt, svc, claim });
    }
    const victims = chooseVictims(candidates, short);
    if (!victims) throw this.noCapacity(serviceId, machineId, requires, short, busy);

    const claim = this.ledger.forceReserve(machineId, serviceId, requires);
    const marked: EvictableService[] = [];
    const waitFor: Promise<void>[] = [];
    const undo = () => {
      for (const m of marked) m.cancelEviction();
      claim.release();
    };
    for (const id of victims) {
      const c = candidates.find((x) => x.serviceId === id)!;
      if (!c.svc.evictWhenDrained({ forService: serviceId, machineId })) {
        undo(); // cannot happen (same tick as swapCandidate)
        throw this.noCapacity(serviceId, machineId, requires, short, busy);
      }
      marked.push(c.svc);
      this.opts.bus.publish(
        'capacity_eviction',
        id,
        { victim: id, forService: serviceId, freed: c.requires, afterInFlight: true, waitMs },
        machineId,
      );
      waitFor.push(c.claim.released);
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), waitMs);
    });
    try {
      const r = await raceSignal(Promise.race([Promise.all(waitFor), timedOut]), signal);
      if (r === 'timeout') {
        undo();
        throw this.noCapacity(
          serviceId,
          machineId,
          requires,
          short,
          busy,
          `waited ${waitMs} ms (capacity_wait_ms) for ${victims.join(', ')} to finish their requests`,
        );
      }
    } catch (err) {
      if (!(err instanceof MachineUnavailableError)) undo();
      throw err;
    } finally {
      clearTimeout(timer);
    }
    return claim;
  }

  /**
   * The machine after `machineId` in the service's list that takes it now, stopping idle services
   * at most — rather than waiting for busy ones here. An awake one is preferred to one that is
   * asleep (waking costs seconds to minutes): the first awake machine that fits, else the first
   * asleep one that fits (it is woken), else null.
   */
  private laterMachine(serviceId: string, machineId: string, requires: Resources): string | null {
    const svc = this.opts.getConfig().services[serviceId];
    if (!svc) return null;
    const ids = machineOrder(svc, this.opts.getConfig()).ids;
    let asleep: string | null = null;
    for (const id of ids.slice(ids.indexOf(machineId) + 1)) {
      const capacity = this.ledger.capacity(id);
      if (Object.keys(exceedsTotal(capacity, requires)).length > 0) continue;
      const short = shortfall(capacity, this.ledger.used(id), requires);
      if (Object.keys(short).length > 0 && chooseVictims(this.idleOn(id, serviceId), short) === null) continue;
      if (!this.isAsleep(id)) return id;
      asleep ??= id;
    }
    return asleep;
  }

  /** Asleep as far as the gateway knows: it has a wake action and was put to sleep or did not answer. */
  private isAsleep(machineId: string): boolean {
    if (!this.opts.getConfig().machines[machineId]?.wake) return false;
    const state = this.power.describe(machineId).state;
    return state === 'asleep' || state === 'going_to_sleep' || state === 'unreachable';
  }

  /** Whether `a` comes before `b` in the service's machine list. */
  private isBefore(serviceId: string, a: string, b: string): boolean {
    const svc = this.opts.getConfig().services[serviceId];
    if (!svc) return false;
    const ids = machineOrder(svc, this.opts.getConfig()).ids;
    const ia = ids.indexOf(a);
    const ib = ids.indexOf(b);
    return ia >= 0 && ib >= 0 && ia < ib;
  }

  private noCapacity(
    serviceId: string,
    machineId: string,
    requires: Resources,
    short: Resources,
    busy: Map<string, string>,
    waited?: string,
  ): MachineUnavailableError {
    const allocation = this.ledger.claims(machineId).map((c) => {
      const svc = this.runtimeOf(c.serviceId);
      const why = busy.has(c.serviceId)
        ? `busy: ${busy.get(c.serviceId)}`
        : svc?.evictionCandidate()
          ? 'idle'
          : (svc?.state ?? 'unknown');
      return { serviceId: c.serviceId, requires: c.requires, state: why };
    });
    const held = allocation.map((a) => `${a.serviceId} (${formatResources(a.requires)}; ${a.state})`).join(', ');
    return new MachineUnavailableError(
      'no_capacity',
      machineId,
      `no room for service '${serviceId}' (requires ${formatResources(requires)}) on machine '${machineId}': ${formatResources(short)} short, held by ${held || 'nobody'} and ${waited ?? 'nothing idle frees enough'}`,
      { requires, short, capacity: this.ledger.capacity(machineId), allocation },
    );
  }

  /** Every configured machine, plus `local` and any machine still holding claims. */
  describe(): MachineInfo[] {
    this.agentChannels.sync();
    const config = this.opts.getConfig();
    const ids = [...new Set([LOCAL_MACHINE_ID, ...Object.keys(config.machines), ...this.ledger.machinesInUse()])];
    return ids.map((id) => {
      const m = config.machines[id];
      const capacity = this.ledger.capacity(id);
      const used = this.ledger.used(id);
      const free: Record<string, number> = {};
      for (const [k, v] of Object.entries(capacity)) free[k] = v - (used[k] ?? 0);
      return {
        id,
        host: placedMachine(config, id).host,
        tags: m?.tags ?? [],
        capacity,
        used,
        free,
        allocation: this.ledger.claims(id).map((c) => ({
          serviceId: c.serviceId,
          requires: c.requires,
          state: this.runtimeOf(c.serviceId)?.state ?? null,
          since: new Date(c.since).toISOString(),
        })),
        power: this.power.describe(id),
        ...(m?.agent ? { resources: this.agentResources(id) } : {}),
        ...(m?.agent ? { agent: this.agentChannels.describe(id) ?? undefined } : {}),
      };
    });
  }

  /** The agent's last report (and a background refresh, so the list stays live). */
  private agentResources(id: string): ResourceReport {
    this.resources.refreshSoon(id);
    return this.resources.latest(id) ?? { report: null, error: null, at: null };
  }

  close(): Promise<void> {
    this.agentChannels.close();
    return this.power.close().catch((err: unknown) => {
      this.opts.log.warn({ event_type: 'machine_power_close_failed', err: message(err) }, 'closing power manager');
    });
  }
}
