/**
 * Cross-service rules of the lifecycle policies (docs/lifecycle-policies.md): `depends_on`
 * names configured services (closest id suggested for a typo), never itself, and never a cycle
 * (the message names the whole path, `a -> b -> c -> a`); `stop_mode: pause` needs a launcher
 * that can pause (process: SIGSTOP/SIGCONT; docker: pause/unpause).
 */
import type { Config } from './schema.ts';
import { closestKey } from './validation.ts';

export interface PolicyIssue {
  path: string;
  message: string;
}

/** Launcher types that implement pause/resume (launchers/process, launchers/docker). */
export const PAUSABLE_LAUNCHERS: readonly string[] = ['process', 'docker'];

export function policyIssues(config: Config): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const ids = Object.keys(config.services);
  for (const [id, svc] of Object.entries(config.services)) {
    for (const [i, dep] of svc.depends_on.entries()) {
      if (dep === id)
        issues.push({ path: `services.${id}.depends_on.${i}`, message: 'a service cannot depend on itself' });
      else if (!(dep in config.services)) {
        const guess = closestKey(dep, ids);
        issues.push({
          path: `services.${id}.depends_on.${i}`,
          message: `unknown service '${dep}'${guess ? `; did you mean ${guess}?` : ''}`,
        });
      } else if (svc.depends_on.indexOf(dep) !== i)
        issues.push({ path: `services.${id}.depends_on.${i}`, message: `'${dep}' is listed twice` });
    }
    if (svc.stop_mode === 'pause') {
      const type = svc.launcher?.type ?? 'none';
      if (!PAUSABLE_LAUNCHERS.includes(type))
        issues.push({
          path: `services.${id}.stop_mode`,
          message: `is 'pause' but the ${type} launcher cannot pause; pause needs a ${PAUSABLE_LAUNCHERS.join(' or ')} launcher`,
        });
    }
  }
  const cycle = findCycle(config);
  if (cycle)
    issues.push({
      path: `services.${cycle[0]}.depends_on`,
      message: `dependency cycle: ${cycle.join(' -> ')}`,
    });
  return issues;
}

/** The first dependency cycle found (its path, first id repeated at the end), or null. */
export function findCycle(config: Config): string[] | null {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | null => {
    const s = state.get(id);
    if (s === 'done') return null;
    if (s === 'visiting') return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, 'visiting');
    stack.push(id);
    for (const dep of config.services[id]?.depends_on ?? []) {
      if (dep === id || !(dep in config.services)) continue; // reported on their own
      const found = visit(dep);
      if (found) return found;
    }
    stack.pop();
    state.set(id, 'done');
    return null;
  };
  for (const id of Object.keys(config.services)) {
    const found = visit(id);
    if (found) return found;
  }
  return null;
}
