/**
 * The wire protocol between the gateway and `hestia agent` (SPEC §15). Shared by the agent
 * (src/agent/, the server) and the gateway's client (client.ts here, used by the `process`
 * launcher and by machines/ for reachability and resources). JSON over HTTP(S), every request
 * with `Authorization: Bearer <token>`.
 *
 * - `GET  /v1/health`                      → AgentHealth
 * - `GET  /v1/resources`                   → AgentResources
 * - `GET  /v1/processes`                   → {processes: AgentProcess[]}
 * - `POST /v1/processes` StartRequest      → 201 AgentProcess
 * - `GET  /v1/processes/{id}`              → AgentProcess
 * - `POST /v1/processes/{id}/stop`         → AgentProcess (after the group is gone)
 * - `GET  /v1/processes/{id}/output?tail=N`→ {lines: OutputLine[]}
 * - `GET  /v1/events[?output=1]`           → NDJSON stream of AgentEvent: first `hello` (what
 *   runs now, so a reconnecting gateway learns of exits it missed and re-adopts the rest), then
 *   `exit` and (with output=1) `output`, and a `heartbeat` every HEARTBEAT_MS so that a lost
 *   channel is noticed within a few seconds.
 * Errors: `{error, code}` with code `HESTIA_AGENT_*`.
 */

export const HEARTBEAT_MS = 1_000;
/** A channel silent for this long is considered lost (the client reconnects). */
export const CHANNEL_DEAD_MS = 3 * HEARTBEAT_MS;

export interface StartRequest {
  /** Who asked (a service id): shown in listings, not an identity. */
  name: string;
  argv: string[];
  cwd?: string;
  /** Merged over the agent's own environment. */
  env?: Record<string, string>;
  stop_signal?: string;
  stop_timeout_ms?: number;
}

export interface ExitRecord {
  code: number | null;
  signal: string | null;
  reason: string;
  at: string;
}

export interface AgentProcess {
  /** The agent's id for this launch (unique per agent). */
  id: string;
  name: string;
  pid: number;
  argv: string[];
  cwd: string | null;
  startedAt: string;
  /** True after an agent restart: not the agent's child, watched through /proc. */
  adopted: boolean;
  running: boolean;
  exit: ExitRecord | null;
}

export interface OutputLine {
  time: string;
  stream: 'stdout' | 'stderr';
  text: string;
}

export interface GpuInfo {
  index: number;
  name: string;
  memoryUsedMb: number;
  memoryTotalMb: number;
}

export interface AgentResources {
  cpus: number;
  loadavg: [number, number, number];
  memory: { totalMb: number; freeMb: number };
  /** null when nvidia-smi is absent or failed (`gpuError` says why when it failed). */
  gpus: GpuInfo[] | null;
  gpuError?: string;
  at: string;
}

export interface AgentHealth {
  ok: true;
  agent: 'hestia';
  version: string;
  processes: number;
}

export type AgentEvent =
  | { type: 'hello'; processes: AgentProcess[] }
  | { type: 'exit'; id: string; exit: ExitRecord }
  | { type: 'output'; id: string; line: OutputLine }
  | { type: 'heartbeat'; at: string };

export const AGENT_ERROR = {
  unauthorized: 'HESTIA_AGENT_UNAUTHORIZED',
  badRequest: 'HESTIA_AGENT_BAD_REQUEST',
  tooLarge: 'HESTIA_AGENT_TOO_LARGE',
  tooMany: 'HESTIA_AGENT_TOO_MANY',
  notFound: 'HESTIA_AGENT_NOT_FOUND',
  spawnFailed: 'HESTIA_AGENT_SPAWN_FAILED',
} as const;

/** Free GPU memory in MiB summed over all GPUs, or null when unknown. */
export function freeGpuMemMb(r: Pick<AgentResources, 'gpus'>): number | null {
  if (!r.gpus) return null;
  return r.gpus.reduce((s, g) => s + Math.max(0, g.memoryTotalMb - g.memoryUsedMb), 0);
}
