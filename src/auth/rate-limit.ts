/**
 * Per-address failure tracking with exponential blocking (brute-force defence for API keys and
 * the dashboard login).
 *
 * Rule: an address may fail `freeFailures` times; each further failure blocks it for
 * `baseBlockMs · 2^(failures − freeFailures − 1)`, capped at `maxBlockMs`. The count is forgotten
 * `forgetAfterMs` after the last failure, and a success resets it. With the defaults (5 free,
 * 1 s doubling, 15 min cap, forget after 15 min quiet) a guesser gets about 15 tries in the first
 * quarter hour and then about 4 an hour.
 *
 * Memory is bounded: at most `maxEntries` addresses are tracked. When full, expired entries are
 * swept and then the least recently failed address is dropped (Map insertion order, refreshed on
 * every failure). An attacker with very many addresses can make us forget an old entry, but
 * never grow memory; such an attacker could bypass a per-address limit anyway.
 *
 * Addresses are bucketed: IPv4-mapped IPv6 (`::ffff:1.2.3.4`) counts as the IPv4 address, and an
 * IPv6 address counts as its /64 network (one subscriber usually owns a whole /64).
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface RateLimitOptions {
  freeFailures?: number;
  baseBlockMs?: number;
  maxBlockMs?: number;
  forgetAfterMs?: number;
  maxEntries?: number;
  /** Injected clock (ms); tests drive time by hand. */
  now?: () => number;
}

export const RATE_LIMIT_DEFAULTS = {
  freeFailures: 5,
  baseBlockMs: 1_000,
  maxBlockMs: 15 * 60_000,
  forgetAfterMs: 15 * 60_000,
  maxEntries: 10_000,
} as const;

interface Entry {
  failures: number;
  lastFailureAt: number;
  blockedUntil: number;
}

export type RateCheck = { blocked: false } | { blocked: true; retryAfterMs: number };

export interface FailureResult {
  /** True when this failure started (or extended) a block. */
  blocked: boolean;
  retryAfterMs: number;
  failures: number;
}

export class FailureLimiter {
  readonly #o: Required<Omit<RateLimitOptions, 'now'>>;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(opts: RateLimitOptions = {}) {
    this.#o = {
      freeFailures: opts.freeFailures ?? RATE_LIMIT_DEFAULTS.freeFailures,
      baseBlockMs: opts.baseBlockMs ?? RATE_LIMIT_DEFAULTS.baseBlockMs,
      maxBlockMs: opts.maxBlockMs ?? RATE_LIMIT_DEFAULTS.maxBlockMs,
      forgetAfterMs: opts.forgetAfterMs ?? RATE_LIMIT_DEFAULTS.forgetAfterMs,
      maxEntries: Math.max(1, opts.maxEntries ?? RATE_LIMIT_DEFAULTS.maxEntries),
    };
    this.#now = opts.now ?? Date.now;
  }

  /** Is this address blocked right now? Cheap; does not record anything. */
  check(address: string): RateCheck {
    const e = this.#entries.get(bucketOf(address));
    if (!e) return { blocked: false };
    const now = this.#now();
    if (e.blockedUntil > now) return { blocked: true, retryAfterMs: e.blockedUntil - now };
    return { blocked: false };
  }

  /** Record one failed attempt (wrong key, wrong password). */
  fail(address: string): FailureResult {
    const key = bucketOf(address);
    const now = this.#now();
    let e = this.#entries.get(key);
    if (e && now - e.lastFailureAt >= this.#o.forgetAfterMs && e.blockedUntil <= now) e = undefined;
    if (e)
      this.#entries.delete(key); // re-inserted below: keeps Map order = least recently failed first
    else {
      if (this.#entries.size >= this.#o.maxEntries) this.#makeRoom(now);
      e = { failures: 0, lastFailureAt: now, blockedUntil: 0 };
    }
    e.failures += 1;
    e.lastFailureAt = now;
    const over = e.failures - this.#o.freeFailures;
    if (over > 0) {
      // 2^over overflows to Infinity long before it matters; min() caps it.
      const block = Math.min(this.#o.maxBlockMs, this.#o.baseBlockMs * 2 ** (over - 1));
      e.blockedUntil = Math.max(e.blockedUntil, now + block);
    }
    this.#entries.set(key, e);
    const blocked = e.blockedUntil > now;
    return { blocked, retryAfterMs: blocked ? e.blockedUntil - now : 0, failures: e.failures };
  }

  /** A successful attempt forgets the address's failures (unless it is blocked right now). */
  succeed(address: string): void {
    const key = bucketOf(address);
    const e = this.#entries.get(key);
    if (e && e.blockedUntil <= this.#now()) this.#entries.delete(key);
  }

  /** Addresses currently blocked (a gauge for metrics). */
  blockedCount(): number {
    const now = this.#now();
    let n = 0;
    for (const e of this.#entries.values()) if (e.blockedUntil > now) n++;
    return n;
  }

  /** Tracked addresses (tests check the bound). */
  get size(): number {
    return this.#entries.size;
  }

  #makeRoom(now: number): void {
    for (const [k, e] of this.#entries) {
      if (e.blockedUntil <= now && now - e.lastFailureAt >= this.#o.forgetAfterMs) this.#entries.delete(k);
    }
    // Still full: drop the least recently failed (first in insertion order).
    while (this.#entries.size >= this.#o.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
  }
}

/** The tracking key of an address: IPv4 as is, IPv4-mapped IPv6 as IPv4, other IPv6 as its /64. */
export function bucketOf(address: string): string {
  const a = address.trim().toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return mapped[1]!;
  if (isIPv4(a) || !isIPv6(a)) return a;
  const groups = expandIPv6(a.split('%')[0]!);
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : a;
}

function expandIPv6(a: string): string[] | null {
  let s = a;
  // Trailing dotted IPv4 (e.g. 64:ff9b::1.2.3.4) → two hex groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const [b1, b2, b3, b4] = v4.slice(1).map(Number) as [number, number, number, number];
    s = s.slice(0, v4.index) + ((b1 << 8) | b2).toString(16) + ':' + ((b3 << 8) | b4).toString(16);
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 0) return null;
  return [...head, ...Array<string>(fill).fill('0'), ...tail].map((g) => Number.parseInt(g || '0', 16).toString(16));
}

export type GateEntry = { ok: true; leave: () => void } | { ok: false; reason: 'total' | 'address'; limit: number };

/**
 * A cap on work running at once (the dashboard login's scrypt checks), in total and per
 * address bucket (bucketOf), so one client cannot take every slot and lock everyone else out.
 * Memory is bounded by the slots in use: a bucket's entry goes when its count drops to 0.
 */
export class ConcurrencyGate {
  #total = 0;
  readonly #perAddress = new Map<string, number>();

  constructor(
    readonly maxTotal: number,
    readonly maxPerAddress: number,
  ) {}

  /** Take a slot for `address`; `leave()` (once) gives it back. */
  enter(address: string): GateEntry {
    const key = bucketOf(address);
    const mine = this.#perAddress.get(key) ?? 0;
    if (mine >= this.maxPerAddress) return { ok: false, reason: 'address', limit: this.maxPerAddress };
    if (this.#total >= this.maxTotal) return { ok: false, reason: 'total', limit: this.maxTotal };
    this.#total++;
    this.#perAddress.set(key, mine + 1);
    let left = false;
    return {
      ok: true,
      leave: () => {
        if (left) return;
        left = true;
        this.#total--;
        const n = (this.#perAddress.get(key) ?? 1) - 1;
        if (n > 0) this.#perAddress.set(key, n);
        else this.#perAddress.delete(key);
      },
    };
  }

  /** Slots in use, in total or for one address. */
  inUse(address?: string): number {
    return address === undefined ? this.#total : (this.#perAddress.get(bucketOf(address)) ?? 0);
  }
}
