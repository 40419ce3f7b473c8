/**
 * Which machines a service may start on, in preference order (SPEC §6). Pure: a function of
 * the service's settings and the config, no I/O, so resolve.ts can check it at load time and
 * the placement (src/machines/) can ask it on every start (a reload changes the answer at once).
 * It lives in config, the bottom layer, so that config never imports machines.
 *
 * Order of precedence:
 * 1. the service's own `machines: [...]` list;
 * 2. else the first `placement_rules` entry whose `match.tags` are all among the service's
 *    `tags` (a rule with no tags matches every service);
 * 3. else, when the launcher names a machine (`ssh`/`slurm` `launcher.machine`), that machine
 *    — so `{host}` in base_url is the machine the server runs on, not the gateway's;
 * 4. else the gateway's own machine, `local`.
 */
import type { Config, ServiceConfig } from './schema.ts';

/** The gateway's own machine: always present, always reachable, never woken or slept. */
export const LOCAL_MACHINE_ID = 'local';
/** Its host unless `machines.local.host` says otherwise. */
export const LOCAL_DEFAULT_HOST = '127.0.0.1';

export type OrderSource = 'service' | 'rule' | 'launcher' | 'default';

export interface MachineOrder {
  /** Machine ids, best first, without duplicates. Never empty. */
  ids: string[];
  /** Where the order came from (for messages and config errors). */
  source: OrderSource;
  /** Index into `placement_rules` when `source` is `rule`. */
  rule?: number;
}

/** The preference list for one service (see the module comment for the precedence). */
export function machineOrder(svc: ServiceConfig, config: Pick<Config, 'placement_rules'>): MachineOrder {
  if (svc.machines.length > 0) return { ids: unique(svc.machines), source: 'service' };
  const tags = new Set(svc.tags);
  for (const [i, rule] of config.placement_rules.entries()) {
    if (rule.match.tags.every((t) => tags.has(t))) return { ids: unique(rule.machines), source: 'rule', rule: i };
  }
  const lm = svc.launcher && 'machine' in svc.launcher ? svc.launcher.machine : undefined;
  if (lm) return { ids: [lm], source: 'launcher' };
  return { ids: [LOCAL_MACHINE_ID], source: 'default' };
}

/**
 * Id and host of a machine (a machine not in the config is only ever `local`). The result is a
 * launchers' `PlacedMachine` (same shape; config does not import launchers).
 */
export function placedMachine(config: Pick<Config, 'machines'>, id: string): { id: string; host: string } {
  const host = config.machines[id]?.host ?? (id === LOCAL_MACHINE_ID ? LOCAL_DEFAULT_HOST : id);
  return { id, host };
}

/** Config path of where an order came from, for messages: `services.x.machines`, `placement_rules.0`. */
export function describeOrderSource(serviceId: string, order: MachineOrder): string {
  switch (order.source) {
    case 'service':
      return `services.${serviceId}.machines`;
    case 'rule':
      return `placement_rules.${order.rule ?? 0}`;
    case 'launcher':
      return `services.${serviceId}.launcher.machine`;
    default:
      return 'the default (the gateway’s own machine)';
  }
}

function unique(ids: readonly string[]): string[] {
  return [...new Set(ids)];
}
