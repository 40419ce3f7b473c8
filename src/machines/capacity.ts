/**
 * The capacity ledger (SPEC §6): what each machine has (`capacity`, e.g. `{gpu_mem_mb: 24000}`),
 * what is allocated there and to whom (a service's `requires`), and which idle services to stop
 * when a start does not fit.
 *
 * The reservation is the race guard: a start decides "this fits" and records its claim in one
 * synchronous step (`tryReserve`), so two starts racing for the same capacity can never both
 * pass it. A claim is held from that moment until the service is cold again (start failed,
 * stopped, crashed) and is released exactly once (`Claim.release` is idempotent).
 *
 * Rules:
 * - A resource a machine does not declare is not limited there (a laptop without a
 *   `gpu_mem_mb` capacity takes a service that requires some: it is the user's fallback).
 * - Every service on a machine holds a claim, even with `requires: {}`: the claims are also how
 *   the power manager knows a machine is in use (sleep).
 * - The ledger never stops anything itself; `chooseVictims` only says which idle services would
 *   free enough, least recently used first. Stopping goes through each victim's own lifecycle.
 */

/** Amounts per resource name (`gpu_mem_mb`, `ram_mb`, `slots`, …). */
export type Resources = Readonly<Record<string, number>>;

/** Capacity held by one service on one machine. */
export interface Claim {
  readonly machineId: string;
  readonly serviceId: string;
  readonly requires: Resources;
  /** When it was taken (epoch ms). */
  readonly since: number;
  /** Settles when the claim is released. */
  readonly released: Promise<void>;
  readonly isReleased: boolean;
  /** Give the capacity back. Idempotent. */
  release(): void;
}

/** A service that could be stopped to make room, as the ledger needs to see it. */
export interface VictimCandidate {
  serviceId: string;
  requires: Resources;
  /** Epoch ms of its last use; the smallest goes first (LRU). */
  lastUsedAt: number;
}

/** Sum of several requirement maps. */
export function sumResources(all: Iterable<Resources>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of all) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/**
 * How much of each declared resource is missing for `requires` to fit next to `used`;
 * `{}` when it fits. Undeclared resources are not limited.
 */
export function shortfall(capacity: Resources, used: Resources, requires: Resources): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, need] of Object.entries(requires)) {
    const cap = capacity[k];
    if (cap === undefined || need <= 0) continue;
    const missing = (used[k] ?? 0) + need - cap;
    if (missing > 0) out[k] = missing;
  }
  return out;
}

/** The part of `requires` larger than the machine's whole capacity (never fits); `{}` when none. */
export function exceedsTotal(capacity: Resources, requires: Resources): Record<string, number> {
  return shortfall(capacity, {}, requires);
}

/**
 * The least recently used candidates whose stop frees `short`: walk them oldest first, take
 * each that frees some of what is still missing, stop as soon as nothing is. Null when even
 * all of them would not free enough (then none should be stopped).
 */
export function chooseVictims(candidates: readonly VictimCandidate[], short: Resources): string[] | null {
  const missing: Record<string, number> = { ...short };
  const left = () => Object.values(missing).some((v) => v > 0);
  if (!left()) return [];
  const chosen: string[] = [];
  const byAge = [...candidates].sort((a, b) => a.lastUsedAt - b.lastUsedAt);
  for (const c of byAge) {
    const frees = Object.keys(missing).some((k) => (missing[k] ?? 0) > 0 && (c.requires[k] ?? 0) > 0);
    if (!frees) continue;
    chosen.push(c.serviceId);
    for (const k of Object.keys(missing)) missing[k] = (missing[k] ?? 0) - (c.requires[k] ?? 0);
    if (!left()) return chosen;
  }
  return null;
}

/** "gpu_mem_mb 4000" style list for messages. */
export function formatResources(r: Resources): string {
  const parts = Object.entries(r).map(([k, v]) => `${k} ${v}`);
  return parts.length > 0 ? parts.join(', ') : 'nothing';
}

export type ReserveResult = { ok: true; claim: Claim } | { ok: false; short: Record<string, number> };

/**
 * Claims per machine. `capacityOf` is read on every decision, so a config reload that changes
 * a capacity applies to the next start (claims already held stay).
 */
export class CapacityLedger {
  private readonly byMachine = new Map<string, Set<Claim>>();

  constructor(
    private readonly capacityOf: (machineId: string) => Resources,
    /** Told whenever a machine's number of claims changes (the power manager's sleep timer). */
    private readonly onCountChange: (machineId: string, count: number) => void = () => {},
  ) {}

  /** Take `requires` on the machine if it fits now (synchronously: the race guard). */
  tryReserve(machineId: string, serviceId: string, requires: Resources): ReserveResult {
    const short = shortfall(this.capacityOf(machineId), this.used(machineId), requires);
    if (Object.keys(short).length > 0) return { ok: false, short };
    return { ok: true, claim: this.add(machineId, serviceId, requires) };
  }

  /**
   * Take `requires` even if it does not fit right now: for a service adopted as already
   * running (it is there, whatever we think of it), and for a start whose victims are being
   * stopped (their claims are still held until they are cold, so nobody else can take the
   * room they are about to free).
   */
  forceReserve(machineId: string, serviceId: string, requires: Resources): Claim {
    return this.add(machineId, serviceId, requires);
  }

  /** Shortfall for `requires` right now ({} = fits), without reserving. */
  shortfall(machineId: string, requires: Resources): Record<string, number> {
    return shortfall(this.capacityOf(machineId), this.used(machineId), requires);
  }

  capacity(machineId: string): Resources {
    return this.capacityOf(machineId);
  }

  claims(machineId: string): Claim[] {
    return [...(this.byMachine.get(machineId) ?? [])];
  }

  /** Every machine that holds at least one claim. */
  machinesInUse(): string[] {
    return [...this.byMachine.entries()].filter(([, s]) => s.size > 0).map(([id]) => id);
  }

  used(machineId: string): Record<string, number> {
    return sumResources([...(this.byMachine.get(machineId) ?? [])].map((c) => c.requires));
  }

  count(machineId: string): number {
    return this.byMachine.get(machineId)?.size ?? 0;
  }

  private add(machineId: string, serviceId: string, requires: Resources): Claim {
    let set = this.byMachine.get(machineId);
    if (!set) {
      set = new Set();
      this.byMachine.set(machineId, set);
    }
    const claims = set;
    let resolveReleased: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      resolveReleased = resolve;
    });
    let isReleased = false;
    const claim: Claim = {
      machineId,
      serviceId,
      requires: { ...requires },
      since: Date.now(),
      released,
      get isReleased() {
        return isReleased;
      },
      release: () => {
        if (isReleased) return;
        isReleased = true;
        claims.delete(claim);
        resolveReleased();
        this.onCountChange(machineId, claims.size);
      },
    };
    claims.add(claim);
    this.onCountChange(machineId, claims.size);
    return claim;
  }
}
