/**
 * Placement seam (SPEC §6): which machines a service may start on, in order. For now every
 * service runs on the gateway's own machine (`local`, host from `machines.local.host` or
 * 127.0.0.1). The runtime already tries the candidates in order (each with its retries), so
 * placement rules, capacity and power management extend this module, not the runtime.
 */
import type { Config } from '../config/schema.ts';
import type { PlacedMachine, TemplateVars } from '../launchers/types.ts';

export interface Placement {
  /** Machines to try for a start, best first. Never empty. */
  candidates(serviceId: string): PlacedMachine[];
}

export const LOCAL_MACHINE_ID = 'local';

export function localMachine(config: Config): PlacedMachine {
  return { id: LOCAL_MACHINE_ID, host: config.machines[LOCAL_MACHINE_ID]?.host ?? '127.0.0.1' };
}

export function localPlacement(getConfig: () => Config): Placement {
  return { candidates: () => [localMachine(getConfig())] };
}

/**
 * The template variables for a service on a machine. `{port}` is the port of base_url (its
 * explicit port, else 80/443 by scheme), read after `{host}`/`{machine}` are substituted.
 */
export function templateVars(serviceId: string, baseUrl: string, machine: PlacedMachine): TemplateVars {
  const sample = baseUrl
    .replace(/\{host\}/g, machine.host)
    .replace(/\{machine\}/g, machine.id)
    .replace(/\{port\}/g, '');
  let port = '';
  try {
    const u = new URL(sample);
    port = u.port || (u.protocol === 'https:' ? '443' : '80');
  } catch {
    // Validated by the config schema; an unparsable URL leaves {port} empty.
  }
  return { host: machine.host, machine: machine.id, port, service: serviceId };
}
