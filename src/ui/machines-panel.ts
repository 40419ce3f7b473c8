/**
 * The dashboard's machines panel, rendered on the server from `GET /v1/machines`' objects: per
 * machine its power state, each declared capacity as a bar (used of capacity), what is allocated
 * to whom, and, for a machine with an agent, its live resources (CPU load, memory, per-GPU
 * memory). Bars are `<meter>` elements: no inline style (the page's CSP forbids it).
 *
 * The page gets the same markup on each poll (`machinesHtml` of `GET /v1/dashboard`), so
 * this file is the panel's only renderer.
 */
import { escapeHtml } from '../auth/login-page.ts';

/** What the panel reads of a machine (a subset of machines/MachineInfo, kept structural). */
export interface PanelMachine {
  id: string;
  host: string;
  capacity: Readonly<Record<string, number>>;
  used?: Readonly<Record<string, number>>;
  allocation: ReadonlyArray<{ serviceId: string; requires: Readonly<Record<string, number>>; state?: string | null }>;
  power?: { state: string; lastError?: string | null };
  /** A machine with an agent: its event channel (connected, connecting, lost, idle) and why it was lost. */
  agent?: { url: string; channel: string; lastError?: string | null; since?: string | null };
  resources?: {
    report: {
      cpus: number;
      loadavg: readonly number[];
      memory: { totalMb: number; freeMb: number };
      gpus: ReadonlyArray<{ index: number; name: string; memoryUsedMb: number; memoryTotalMb: number }> | null;
      at: string;
    } | null;
    error: string | null;
    at: string | null;
  };
}

/** Allocations listed per machine; the rest are counted ("and 12 more"). */
export const MAX_ALLOCATION = 8;

function bar(label: string, used: number, total: number, unit: string, field: string, shown?: string): string {
  const text = shown ?? `${Math.round(used)} / ${Math.round(total)}${unit ? ` ${unit}` : ''}`;
  return `<div class="bar" data-resource="${escapeHtml(field)}"><span class="label">${escapeHtml(label)}</span><meter min="0" max="${Math.max(total, 0)}" value="${Math.max(used, 0)}" high="${total * 0.85}" optimum="0" title="${escapeHtml(text)}"></meter><span class="value">${escapeHtml(text)}</span></div>`;
}

function live(m: PanelMachine): string {
  const r = m.resources;
  if (!r) return '';
  if (!r.report) return `<p class="error">agent: ${escapeHtml(r.error ?? 'no report yet')}</p>`;
  const rep = r.report;
  const parts = [
    bar(
      'CPU load',
      rep.loadavg[0] ?? 0,
      rep.cpus,
      '',
      'cpu',
      `${(rep.loadavg[0] ?? 0).toFixed(1)} on ${rep.cpus} CPUs`,
    ),
    bar('Memory', rep.memory.totalMb - rep.memory.freeMb, rep.memory.totalMb, 'MB', 'memory'),
    ...(rep.gpus ?? []).map((g) =>
      bar(`GPU ${g.index} ${g.name}`, g.memoryUsedMb, g.memoryTotalMb, 'MB', `gpu${g.index}`),
    ),
  ];
  const stale = r.error ? ` <span class="error">(${escapeHtml(r.error)})</span>` : '';
  return `<div class="live-resources"><h4>Live <time datetime="${escapeHtml(rep.at)}">${escapeHtml(rep.at.slice(11, 19))}</time>${stale}</h4>${parts.join('')}</div>`;
}

export function machineCard(m: PanelMachine): string {
  const id = escapeHtml(m.id);
  const power = m.power
    ? ` <span class="power power-${escapeHtml(m.power.state)}">${escapeHtml(m.power.state)}</span>`
    : '';
  const caps = Object.entries(m.capacity).map(([k, total]) => bar(k, m.used?.[k] ?? 0, total, '', `capacity:${k}`));
  const more =
    m.allocation.length > MAX_ALLOCATION
      ? `<li class="muted">and ${m.allocation.length - MAX_ALLOCATION} more</li>`
      : '';
  const alloc = m.allocation.length
    ? `<ul class="allocation">${m.allocation
        .slice(0, MAX_ALLOCATION)
        .map((a) => {
          const req = Object.entries(a.requires)
            .map(([k, v]) => `${escapeHtml(k)} ${v}`)
            .join(', ');
          return `<li data-service="${escapeHtml(a.serviceId)}">${escapeHtml(a.serviceId)}${a.state ? ` <span class="muted">${escapeHtml(a.state)}</span>` : ''}${req ? ` — ${req}` : ''}</li>`;
        })
        .join('')}${more}</ul>`
    : '<p class="muted">nothing allocated</p>';
  const err = m.power?.lastError ? `<p class="error">${escapeHtml(m.power.lastError)}</p>` : '';
  const agent = m.agent
    ? ` <span class="agent agent-${escapeHtml(m.agent.channel)}" title="${escapeHtml(m.agent.lastError ?? m.agent.url)}">agent ${escapeHtml(m.agent.channel)}</span>`
    : '';
  return `<article class="machine" data-machine="${id}"><h3>${id} <span class="muted">${escapeHtml(m.host)}</span>${power}${agent}</h3>${caps.join('')}${live(m)}${alloc}${err}</article>`;
}

/** The panel's content: one card per machine (or a line saying there are none). */
export function machineCards(machines: readonly PanelMachine[]): string {
  return machines.length ? machines.map(machineCard).join('\n') : '<p class="muted">No machines.</p>';
}

export function machinesPanel(machines: readonly PanelMachine[]): string {
  const cards = machineCards(machines);
  return `<section aria-labelledby="machines-title">
  <h2 id="machines-title">Machines</h2>
  <div id="machines" class="machines">
${cards}
  </div>
</section>`;
}
