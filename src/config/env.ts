/**
 * Environment overrides (SPEC §3), as pure functions over a raw (unvalidated) config object.
 *
 * Rules:
 * - `<ID>_<FIELD>`: the id upper-cased with `-` → `_` (`my-service` → `MY_SERVICE_IDLE_TIMEOUT_MS`).
 *   The longest known field suffix wins (`X_SEMAPHORE_ENABLED` is field `semaphore_enabled` of `x`).
 * - `<ID>_BASE_URL` for an id not in the file defines a new service (id lower-cased, `_` → `-`).
 * - Env-settable fields are the scalar fields of `serviceSchema` (string, number, boolean):
 *   found by reading the schema, so a new scalar field is env-settable with no extra code.
 * - Booleans accept true/false/1/0/yes/no/on/off; a malformed number is an issue naming the variable.
 * - Reserved names are global settings, never service overrides: `HESTIA_*` and the original's
 *   `SEMAPHORE_BASE_URL`, `SEMAPHORE_TIMEOUT`, `SEMAPHORE_API_KEY`, `SEMAPHORE_USERNAME`,
 *   `SEMAPHORE_PASSWORD` (so a service named `semaphore` is not retargeted by the global URL).
 */
import type { z } from 'zod';
import { serviceSchema } from './schema.ts';

export type ScalarKind = 'string' | 'number' | 'boolean';

export interface EnvIssue {
  variable: string;
  path: string;
  message: string;
}

export interface EnvResult {
  /** Human notes about what the environment did (new services, ignored variables). */
  notes: string[];
  issues: EnvIssue[];
}

type Raw = Record<string, unknown>;

/** Unwrap optional/nullable/default wrappers and report a scalar field's kind, if scalar. */
export function scalarKind(schema: z.ZodType): { kind: ScalarKind; nullable: boolean } | null {
  // zod 4 keeps the definition on `_zod.def`; wrappers expose `innerType`.
  let def = (schema as unknown as { _zod: { def: { type: string; innerType?: z.ZodType } } })._zod.def;
  let nullable = false;
  while (def.innerType) {
    if (def.type === 'nullable' || def.type === 'optional') nullable = true;
    def = (def.innerType as unknown as { _zod: { def: typeof def } })._zod.def;
  }
  if (def.type === 'string' || def.type === 'number' || def.type === 'boolean') return { kind: def.type, nullable };
  return null;
}

/** Env-settable service fields and their kinds, longest name first (for longest-suffix match). */
export const SERVICE_ENV_FIELDS: ReadonlyArray<{ field: string; suffix: string; kind: ScalarKind; nullable: boolean }> =
  Object.entries(serviceSchema.shape)
    .flatMap(([field, s]) => {
      const k = scalarKind(s as z.ZodType);
      return k ? [{ field, suffix: `_${field.toUpperCase()}`, ...k }] : [];
    })
    .sort((a, b) => b.suffix.length - a.suffix.length);

export const GLOBAL_ENV: Readonly<Record<string, { path: string[]; kind: ScalarKind }>> = {
  HESTIA_HOST: { path: ['server', 'host'], kind: 'string' },
  HESTIA_PORT: { path: ['server', 'port'], kind: 'number' },
  HESTIA_DB_PATH: { path: ['server', 'db_path'], kind: 'string' },
  HESTIA_LOG_LEVEL: { path: ['server', 'log_level'], kind: 'string' },
  HESTIA_AUTH_ENABLED: { path: ['auth', 'enabled'], kind: 'boolean' },
  HESTIA_STRICT_CONFIG: { path: ['server', 'strict_config'], kind: 'boolean' },
  HESTIA_STRATEGIES_DIR: { path: ['strategies_dir'], kind: 'string' },
  SEMAPHORE_BASE_URL: { path: ['semaphore_base_url'], kind: 'string' },
  SEMAPHORE_TIMEOUT: { path: ['semaphore_timeout'], kind: 'number' },
  SEMAPHORE_API_KEY: { path: ['semaphore_api_key'], kind: 'string' },
  SEMAPHORE_USERNAME: { path: ['semaphore_username'], kind: 'string' },
  SEMAPHORE_PASSWORD: { path: ['semaphore_password'], kind: 'string' },
};

/** Variables that are never read as service overrides (process settings, not services). */
function isReserved(name: string): boolean {
  return name.startsWith('HESTIA_') || name in GLOBAL_ENV;
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

export function envIdOf(serviceId: string): string {
  return serviceId.toUpperCase().replace(/-/g, '_');
}

/** Parse one env value; returns the value or an error message. */
export function coerce(
  variable: string,
  raw: string,
  kind: ScalarKind,
  nullable: boolean,
): { ok: true; value: unknown } | { ok: false; message: string } {
  const v = raw.trim();
  if (nullable && (v === '' || v.toLowerCase() === 'null' || v.toLowerCase() === 'none'))
    return { ok: true, value: null };
  if (kind === 'number') {
    const n = v === '' ? Number.NaN : Number(v);
    if (!Number.isFinite(n)) return { ok: false, message: `${variable}: must be a number, got ${JSON.stringify(raw)}` };
    return { ok: true, value: n };
  }
  if (kind === 'boolean') {
    const l = v.toLowerCase();
    if (TRUE.has(l)) return { ok: true, value: true };
    if (FALSE.has(l)) return { ok: true, value: false };
    return {
      ok: false,
      message: `${variable}: must be a boolean (true/false/1/0/yes/no/on/off), got ${JSON.stringify(raw)}`,
    };
  }
  return { ok: true, value: raw };
}

function setPath(obj: Raw, path: readonly string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Raw;
  }
  cur[path[path.length - 1] as string] = value;
}

/**
 * Apply the environment to a raw config object in place. `raw.services` must be an object.
 * Pure apart from mutating `raw` (callers pass a fresh copy of the parsed YAML).
 */
export function applyEnvOverrides(raw: Raw, env: Readonly<Record<string, string | undefined>>): EnvResult {
  const notes: string[] = [];
  const issues: EnvIssue[] = [];
  const services = raw.services as Record<string, Raw>;

  // Global settings.
  for (const [name, spec] of Object.entries(GLOBAL_ENV)) {
    const value = env[name];
    if (value === undefined) continue;
    const c = coerce(name, value, spec.kind, false);
    if (!c.ok) issues.push({ variable: name, path: spec.path.join('.'), message: c.message });
    else setPath(raw, spec.path, c.value);
  }

  // A machine agent's token (SPEC §15): `<MACHINE>_AGENT_TOKEN`, for a machine with an `agent` block.
  const machines = raw.machines;
  if (machines !== null && typeof machines === 'object' && !Array.isArray(machines)) {
    for (const [id, m] of Object.entries(machines as Record<string, unknown>)) {
      const agent = m !== null && typeof m === 'object' ? (m as Raw).agent : undefined;
      const token = env[`${envIdOf(id)}_AGENT_TOKEN`];
      if (token === undefined || agent === null || typeof agent !== 'object' || Array.isArray(agent)) continue;
      (agent as Raw).token = token;
    }
  }

  // Index configured ids by their env form. Two ids with one env form both get the value.
  const byEnvId = new Map<string, string[]>();
  const indexId = (id: string) => {
    const e = envIdOf(id);
    byEnvId.set(e, [...(byEnvId.get(e) ?? []), id]);
  };
  for (const id of Object.keys(services)) indexId(id);

  // New services first, so their other variables apply to them in the second pass.
  const names = Object.keys(env).sort();
  for (const name of names) {
    if (isReserved(name) || !name.endsWith('_BASE_URL') || name === '_BASE_URL') continue;
    // Only when BASE_URL is the longest matching suffix (not e.g. a longer field ending the same).
    const match = SERVICE_ENV_FIELDS.find((f) => name.endsWith(f.suffix) && name.length > f.suffix.length);
    if (match?.field !== 'base_url') continue;
    const envId = name.slice(0, -'_BASE_URL'.length);
    if (byEnvId.has(envId)) continue;
    const id = envId.toLowerCase().replace(/_/g, '-');
    services[id] = {};
    indexId(id);
    notes.push(`service '${id}' defined by environment variable ${name}`);
  }

  for (const name of names) {
    if (isReserved(name)) continue;
    const value = env[name];
    if (value === undefined) continue;
    const match = SERVICE_ENV_FIELDS.find((f) => name.endsWith(f.suffix) && name.length > f.suffix.length);
    if (!match) continue;
    const ids = byEnvId.get(name.slice(0, -match.suffix.length));
    if (!ids) continue; // an unrelated variable (e.g. some other tool's *_TIMEOUT_MS)
    const c = coerce(name, value, match.kind, match.nullable);
    for (const id of ids) {
      const path = `services.${id}.${match.field}`;
      if (!c.ok) issues.push({ variable: name, path, message: c.message });
      else {
        const svc = services[id];
        if (svc === null || typeof svc !== 'object') services[id] = {};
        (services[id] as Raw)[match.field] = c.value;
      }
    }
  }
  return { notes, issues };
}
