/**
 * Passive instance health: the gateway reports what happened when it tried to connect to an
 * upstream, and this bookkeeping turns it into the `healthy`/`cooldownUntil` that strategies see.
 *
 * Rules:
 * - A failure to connect (refused, reset before a response, DNS, connect timeout) puts the URL
 *   in a cooldown of `cooldownMs` (routing.cooldown_ms, default 30 s). While cooling down, the
 *   instance is unhealthy and load balancing skips it.
 * - When the cooldown ends the instance is healthy again and gets traffic again (that request
 *   is the probe: no background health checks). Another failure starts a new, equally long
 *   cooldown; `consecutiveFailures` counts them for strategies that want to back off harder.
 * - Any response from the instance (whatever its status: a 500 is an answer) clears it.
 *
 * Keyed by URL without a trailing slash, so `http://a:1` and `http://a:1/` are one instance.
 * Time comes from an injected clock, which makes cooldown tests deterministic.
 */
import type { InstanceSnapshot } from './types.ts';

export const DEFAULT_COOLDOWN_MS = 30_000;

export type Clock = () => number;

interface Entry {
  cooldownUntil: number;
  consecutiveFailures: number;
}

export interface InstanceLike {
  readonly url: string;
  readonly weight?: number;
  readonly region?: string | null | undefined;
}

export function instanceKey(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url;
}

export class InstanceHealth {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly clock: Clock = Date.now) {}

  now(): number {
    return this.clock();
  }

  /** A connection to `url` failed: cool it down until now + cooldownMs. Returns that time. */
  markFailure(url: string, cooldownMs: number): number {
    const key = instanceKey(url);
    const prev = this.entries.get(key);
    const until = this.clock() + cooldownMs;
    this.entries.set(key, { cooldownUntil: until, consecutiveFailures: (prev?.consecutiveFailures ?? 0) + 1 });
    return until;
  }

  /** `url` answered: healthy, failure count reset. */
  markSuccess(url: string): void {
    // Map#delete on a missing key is cheap, so the proxy can call this after every response.
    this.entries.delete(instanceKey(url));
  }

  isHealthy(url: string, now: number = this.clock()): boolean {
    const e = this.entries.get(instanceKey(url));
    return e === undefined || e.cooldownUntil <= now;
  }

  /** Read-only snapshot of `instances` (config order kept) at time `now`. */
  snapshot(instances: readonly InstanceLike[], now: number = this.clock()): InstanceSnapshot[] {
    return instances.map((i) => {
      const e = this.entries.get(instanceKey(i.url));
      const cooling = e !== undefined && e.cooldownUntil > now;
      return {
        url: i.url,
        weight: i.weight ?? 1,
        region: i.region ?? null,
        healthy: !cooling,
        cooldownUntil: cooling ? e.cooldownUntil : null,
        consecutiveFailures: e?.consecutiveFailures ?? 0,
      };
    });
  }
}
