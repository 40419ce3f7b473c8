/**
 * The services' `depends_on` edges and `group` memberships, read from a validated config (no
 * unknown ids, no cycles: config/policy-rules.ts). Pure and rebuilt on every reload.
 */
import type { Config } from '../config/schema.ts';

export class DependencyGraph {
  private readonly deps = new Map<string, string[]>();
  private readonly dependentsOf = new Map<string, string[]>();
  private readonly groupOf = new Map<string, string>();
  private readonly membersOf = new Map<string, string[]>();

  constructor(config: Config) {
    for (const [id, svc] of Object.entries(config.services)) {
      const deps = svc.depends_on.filter((d) => d !== id && d in config.services);
      this.deps.set(id, deps);
      for (const d of deps) this.dependentsOf.set(d, [...(this.dependentsOf.get(d) ?? []), id]);
      if (svc.group) {
        this.groupOf.set(id, svc.group);
        this.membersOf.set(svc.group, [...(this.membersOf.get(svc.group) ?? []), id]);
      }
    }
  }

  /** The services `id` depends on directly (started before it). */
  dependsOn(id: string): readonly string[] {
    return this.deps.get(id) ?? [];
  }

  /** The services that depend on `id` directly (stopped before it). */
  dependents(id: string): readonly string[] {
    return this.dependentsOf.get(id) ?? [];
  }

  group(id: string): string | null {
    return this.groupOf.get(id) ?? null;
  }

  /** The other members of `id`'s group (empty without a group). */
  siblings(id: string): readonly string[] {
    const g = this.groupOf.get(id);
    return g === undefined ? [] : (this.membersOf.get(g) ?? []).filter((m) => m !== id);
  }

  members(group: string): readonly string[] {
    return this.membersOf.get(group) ?? [];
  }
}
