/**
 * The host and port doors' config (SPEC §10, docs/doors.md): which host names pick which
 * service, which extra listeners exist, and the cross-field rules that refuse a config whose
 * doors collide. Pure: used by resolve.ts (the rules) and by the server (the tables).
 */
import type { Config } from './schema.ts';

export interface DoorIssue {
  path: string;
  message: string;
}

/** One extra listener: every request on it goes to `serviceId`. `host` null = the main listener's host. */
export interface PortDoorConfig {
  readonly serviceId: string;
  readonly host: string | null;
  readonly port: number;
}

/** `listen: 8188` or `"ADDR:PORT"` (`"[::1]:8188"`) → address (brackets dropped) and port. */
export function parseListen(serviceId: string, listen: number | string): PortDoorConfig {
  if (typeof listen === 'number') return { serviceId, host: null, port: listen };
  const i = listen.lastIndexOf(':');
  let host = listen.slice(0, i);
  if (host.startsWith('[')) host = host.slice(1, -1);
  return { serviceId, host, port: Number(listen.slice(i + 1)) };
}

/** Host name (lowercase, no trailing dot) → service id, for every `hosts` entry and `service_domain`. */
export function hostTable(config: Config): Map<string, string> {
  const table = new Map<string, string>();
  const domain = config.server.service_domain;
  for (const [id, svc] of Object.entries(config.services)) {
    for (const h of svc.hosts) if (!table.has(h)) table.set(h, id);
    if (domain) {
      const h = `${id.toLowerCase()}.${domain}`;
      if (!table.has(h)) table.set(h, id);
    }
  }
  return table;
}

/** Every service's extra listener, in config order. */
export function portDoors(config: Config): PortDoorConfig[] {
  const out: PortDoorConfig[] = [];
  for (const [id, svc] of Object.entries(config.services))
    if (svc.listen !== undefined && svc.listen !== null) out.push(parseListen(id, svc.listen));
  return out;
}

/** Cross-field rules: a host or port used twice (naming both services), a port equal to the main port. */
export function doorIssues(config: Config): DoorIssue[] {
  const issues: DoorIssue[] = [];
  const domain = config.server.service_domain;
  const hosts = new Map<string, string>();
  for (const [id, svc] of Object.entries(config.services)) {
    const mine = svc.hosts.map((h, i) => ({ h, path: `services.${id}.hosts.${i}` }));
    if (domain) mine.push({ h: `${id.toLowerCase()}.${domain}`, path: 'server.service_domain' });
    const seenHere = new Set<string>();
    for (const { h, path } of mine) {
      if (seenHere.has(h)) continue;
      seenHere.add(h);
      const other = hosts.get(h);
      if (other !== undefined)
        issues.push({ path, message: `host '${h}' is used by both services '${other}' and '${id}'` });
      else hosts.set(h, id);
    }
  }
  const ports = new Map<number, string>();
  const main = config.server.port;
  for (const d of portDoors(config)) {
    const path = `services.${d.serviceId}.listen`;
    if (d.port === 0) continue; // any free port: never a collision
    if (d.port > 65535) {
      issues.push({ path, message: `port ${d.port} is out of range (1-65535)` });
      continue;
    }
    if (d.port === main) issues.push({ path, message: `port ${d.port} is the main port (server.port)` });
    const other = ports.get(d.port);
    if (other !== undefined)
      issues.push({ path, message: `port ${d.port} is used by both services '${other}' and '${d.serviceId}'` });
    else ports.set(d.port, d.serviceId);
  }
  return issues;
}
