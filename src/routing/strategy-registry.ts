/**
 * The set of loaded strategies: the built-ins plus whatever plugins registered.
 * Names are unique; the first registration wins and built-ins cannot be replaced (a plugin that
 * wants different behaviour registers under its own name and a service opts into it).
 */
import { loadBalancer } from './strategies/load-balancer.ts';
import { modelRouter } from './strategies/model-router.ts';
import type { AnyStrategy } from './types.ts';

export interface LoadedStrategy {
  readonly strategy: AnyStrategy;
  /** `builtin`, or the plugin file it came from. */
  readonly source: string;
}

export const BUILTIN_STRATEGIES: readonly AnyStrategy[] = [loadBalancer as AnyStrategy, modelRouter as AnyStrategy];

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * Why `value` is not a usable strategy, or null when it is. Checks the shape only: what
 * `select` returns is checked on every call by the router.
 */
export function strategyProblem(value: unknown): string | null {
  if (value === null || typeof value !== 'object') return `expected a strategy object, got ${describe(value)}`;
  const s = value as Record<string, unknown>;
  if (typeof s.name !== 'string' || !NAME_RE.test(s.name))
    return `name must be 1-64 letters, digits, '_', '-' or '.', got ${describe(s.name)}`;
  if (typeof s.version !== 'string' || s.version === '')
    return `strategy '${s.name}': version must be a non-empty string, got ${describe(s.version)}`;
  if (!Array.isArray(s.features) || !s.features.every((f) => typeof f === 'string'))
    return `strategy '${s.name}': features must be an array of strings, got ${describe(s.features)}`;
  if (typeof s.select !== 'function')
    return `strategy '${s.name}': select must be a function, got ${describe(s.select)}`;
  if (s.createState !== undefined && typeof s.createState !== 'function')
    return `strategy '${s.name}': createState must be a function when present, got ${describe(s.createState)}`;
  return null;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return 'an object';
  return typeof value === 'function' ? 'a function' : `${typeof value} ${String(value)}`;
}

export class StrategyRegistry {
  private readonly byName = new Map<string, LoadedStrategy>();

  constructor(builtins: readonly AnyStrategy[] = BUILTIN_STRATEGIES) {
    for (const s of builtins) this.byName.set(s.name, { strategy: s, source: 'builtin' });
  }

  /** Add a strategy; returns why it was refused, or null when added. */
  add(candidate: unknown, source: string): string | null {
    const problem = strategyProblem(candidate);
    if (problem) return problem;
    const strategy = candidate as AnyStrategy;
    const existing = this.byName.get(strategy.name);
    if (existing)
      return `strategy '${strategy.name}' is already registered (${existing.source === 'builtin' ? 'built in' : `by ${existing.source}`})`;
    // A frozen copy: a plugin cannot change its name or features after registration. Methods
    // are bound, so a strategy written as a class instance keeps its `this`.
    const frozen: AnyStrategy = Object.freeze({
      name: strategy.name,
      version: strategy.version,
      features: Object.freeze([...strategy.features]),
      select: strategy.select.bind(strategy),
      ...(strategy.createState ? { createState: strategy.createState.bind(strategy) } : {}),
    });
    this.byName.set(strategy.name, { strategy: frozen, source });
    return null;
  }

  get(name: string): LoadedStrategy | undefined {
    return this.byName.get(name);
  }

  list(): LoadedStrategy[] {
    return [...this.byName.values()];
  }
}
