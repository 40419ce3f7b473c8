/**
 * Config resolution: a pure function of (YAML text, environment) → a config or a list of
 * issues. No I/O here (loader.ts reads files), so every rule is unit-testable.
 *
 * Order (SPEC §3): file, then environment overrides (environment wins), then defaults.
 */
import { loadAll, YAMLException } from 'js-yaml';
import type { z } from 'zod';
import { doorIssues } from './doors.ts';
import { applyEnvOverrides, envIdOf } from './env.ts';
import { describeOrderSource, LOCAL_MACHINE_ID, machineOrder } from './machine-order.ts';
import { policyIssues } from './policy-rules.ts';
import { type Config, configSchema } from './schema.ts';
import { closestKey, describeUnion, describeValue, expectedNoun, maskText } from './validation.ts';

export interface ConfigIssue {
  /** The file (or `<built-in>` / `<env>`). */
  file: string;
  /** Dotted key path, e.g. `services.comfyui.queue_size`; '' for the whole document. */
  path: string;
  message: string;
  /** The environment variable that caused it, if any. */
  variable?: string;
}

export type ResolveResult =
  | { ok: true; config: Config; warnings: string[]; notes: string[] }
  | { ok: false; issues: ConfigIssue[]; warnings: string[] };

export interface ResolveOptions {
  /** Name used in messages. */
  file?: string;
  /** Raw services merged under the file's (the built-in demo). File entries win. */
  baseServices?: Record<string, unknown>;
}

/**
 * The original's built-in service, present only when the file defines no services (or there is
 * no file). With a `health_url`, so a start reports ready only when an Ollama really answers.
 */
export const DEFAULT_OLLAMA = { base_url: 'http://localhost:11434', health_url: 'http://localhost:11434/api/tags' };

export function formatIssue(i: ConfigIssue): string {
  const where = i.path ? `${i.file}: ${i.path}` : i.file;
  return `${where}: ${i.message}${i.variable && !i.message.startsWith(i.variable) ? ` (from ${i.variable})` : ''}`;
}

type Raw = Record<string, unknown>;
const isObj = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v);

export function resolveConfig(
  text: string,
  env: Readonly<Record<string, string | undefined>>,
  opts: ResolveOptions = {},
): ResolveResult {
  const file = opts.file ?? '<config>';
  const warnings: string[] = [];

  // 1. YAML → plain object, with line/column on syntax errors. js-yaml with its YAML 1.2 core
  //    schema (the default): `yes`/`no` stay strings, no timestamps, no `<<` merge; duplicate
  //    keys and unknown tags are errors. It parses a 2,000-service file ~4× faster than the
  //    `yaml` library did cold (docs/configuration.md, "The YAML it reads").
  let docs: unknown[];
  try {
    docs = loadAll(text, { filename: file });
  } catch (err) {
    const e = err instanceof YAMLException ? err : null;
    const at = e?.mark ? `line ${e.mark.line + 1}, column ${e.mark.column + 1}: ` : '';
    const message = `invalid YAML: ${at}${e ? e.reason : (err as Error).message}`;
    return { ok: false, warnings, issues: [{ file, path: '', message }] };
  }
  if (docs.length > 1)
    return {
      ok: false,
      warnings,
      issues: [{ file, path: '', message: `invalid YAML: ${docs.length} documents (separated by ---); expected one` }],
    };
  let top: unknown;
  try {
    top = unshared(docs[0] ?? null);
  } catch (err) {
    return { ok: false, warnings, issues: [{ file, path: '', message: `invalid YAML: ${(err as Error).message}` }] };
  }
  if (top !== null && !isObj(top)) {
    const kind = Array.isArray(top) ? 'a list' : 'a scalar';
    return { ok: false, warnings, issues: [{ file, path: '', message: `must be a mapping of settings, got ${kind}` }] };
  }
  const raw: Raw = top ?? {};

  // 2. Normalise the services map before env overrides (an empty `foo:` entry is `{}`).
  if (raw.services === undefined || raw.services === null) raw.services = {};
  if (!isObj(raw.services)) {
    return {
      ok: false,
      warnings,
      issues: [{ file, path: 'services', message: 'must be a mapping of service id to settings' }],
    };
  }
  const services = raw.services as Raw;
  for (const [id, svc] of Object.entries(services)) if (svc === null) services[id] = {};
  // A file that defines services gets exactly those (a user who wants `ollama` declares it).
  const fileDefinesServices = Object.keys(services).length > 0;
  for (const [id, svc] of Object.entries(opts.baseServices ?? {}))
    if (!(id in services)) services[id] = structuredClone(svc);
  if (!fileDefinesServices && !('ollama' in services)) services.ollama = { ...DEFAULT_OLLAMA };

  // 3. Environment.
  const envResult = applyEnvOverrides(raw, env);
  const issues: ConfigIssue[] = envResult.issues.map((i) => ({
    file: '<env>',
    path: i.path,
    message: i.message,
    variable: i.variable,
  }));

  // 4. Unknown keys warn (they are dropped), or are errors with server.strict_config. Either
  //    way they are reported together with every other problem.
  const strict = isObj(raw.server) && raw.server.strict_config === true;
  for (const u of unknownKeys(configSchema, raw, [])) {
    const guess = closestKey(u.key, u.known);
    const hint = guess ? `; did you mean ${guess}?` : '';
    if (strict) issues.push({ file, path: u.path, message: `unknown key${hint} (server.strict_config is true)` });
    else warnings.push(`${file}: ${u.path}: unknown key (ignored)${hint}`);
  }

  // 5. Original semantics that sit between fields.
  for (const [id, svc] of Object.entries(services)) {
    if (!isObj(svc)) continue;
    if (svc.semaphore_enabled === true) {
      if (
        svc.semaphore_machine_id === undefined ||
        svc.semaphore_machine_id === null ||
        svc.semaphore_machine_id === ''
      )
        issues.push({
          file,
          path: `services.${id}.semaphore_machine_id`,
          message: 'is required when semaphore_enabled is true',
        });
      if (svc.launcher === undefined) svc.launcher = { type: 'semaphore' };
      else if (isObj(svc.launcher) && svc.launcher.type !== 'semaphore')
        issues.push({
          file,
          path: `services.${id}.launcher.type`,
          message: `is '${String(svc.launcher.type)}' but semaphore_enabled is true; remove one of them`,
        });
    }
  }

  // A machine agent's token may come from the environment (SPEC §15): say which variable.
  if (isObj(raw.machines))
    for (const [id, m] of Object.entries(raw.machines)) {
      if (!isObj(m) || !isObj(m.agent) || m.agent.token !== undefined) continue;
      issues.push({
        file,
        path: `machines.${id}.agent.token`,
        message: `is required: set it here or in the environment variable ${envIdOf(id)}_AGENT_TOKEN`,
      });
      m.agent.token = 'missing'; // reported above; keeps the schema from repeating it
    }

  // 6. Schema: types, ranges, defaults.
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    for (const iss of parsed.error.issues) issues.push(zodIssue(file, iss, raw));
  }
  if (issues.length > 0 || !parsed.success) return { ok: false, issues: dedupe(issues).map(masked), warnings };

  // 7. Cross-field rules.
  const config = parsed.data;
  for (const [id, svc] of Object.entries(config.services)) {
    for (const [i, m] of svc.machines.entries())
      if (!(m in config.machines) && m !== 'local')
        issues.push({ file, path: `services.${id}.machines.${i}`, message: `unknown machine '${m}'` });
    const lm = svc.launcher && 'machine' in svc.launcher ? svc.launcher.machine : undefined;
    if (lm && !(lm in config.machines))
      issues.push({ file, path: `services.${id}.launcher.machine`, message: `unknown machine '${lm}'` });
  }
  for (const [i, rule] of config.placement_rules.entries())
    for (const [j, m] of rule.machines.entries())
      if (!(m in config.machines) && m !== 'local')
        issues.push({ file, path: `placement_rules.${i}.machines.${j}`, message: `unknown machine '${m}'` });
  issues.push(...machineIssues(file, config));
  issues.push(...modelIssues(file, config));
  for (const d of doorIssues(config)) issues.push({ file, ...d });
  for (const p of policyIssues(config)) issues.push({ file, ...p });
  if (issues.length > 0) return { ok: false, issues: issues.map(masked), warnings };

  return { ok: true, config, warnings, notes: envResult.notes };
}

/** A model name belongs to one service: the model endpoint routes by it. */
function modelIssues(file: string, config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const owner = new Map<string, string>();
  for (const [id, svc] of Object.entries(config.services)) {
    for (const [i, model] of svc.models.entries()) {
      const first = owner.get(model);
      if (first === undefined) owner.set(model, id);
      else
        issues.push({
          file,
          path: `services.${id}.models.${i}`,
          message:
            first === id
              ? `model '${model}' is listed twice`
              : `model '${model}' is already served by service '${first}' (a model name picks one service)`,
        });
    }
  }
  return issues;
}

/** Cross-field rules of machines and placement (SPEC §6; src/machines/). */
function machineIssues(file: string, config: Config): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const known = (m: string) => m in config.machines || m === LOCAL_MACHINE_ID;
  for (const [id, m] of Object.entries(config.machines)) {
    for (const [k, v] of Object.entries(m.capacity))
      if (v === 'auto' && (k !== 'gpu_mem_mb' || !m.agent))
        issues.push({
          file,
          path: `machines.${id}.capacity.${k}`,
          message:
            k !== 'gpu_mem_mb'
              ? 'auto is only for gpu_mem_mb (from the agent’s nvidia-smi report)'
              : 'auto needs the machine’s agent (machines.' + id + '.agent), which reports the free GPU memory',
        });
    for (const kind of ['wake', 'sleep'] as const) {
      const a = m[kind];
      if (!a) continue;
      if (id === LOCAL_MACHINE_ID)
        issues.push({
          file,
          path: `machines.${id}.${kind}`,
          message: 'the gateway’s own machine cannot be woken or put to sleep',
        });
      if (a.machine !== undefined && !known(a.machine))
        issues.push({ file, path: `machines.${id}.${kind}.machine`, message: `unknown machine '${a.machine}'` });
    }
    // After a wake the gateway waits for the machine to answer: it needs something to ask.
    if (m.wake && !m.wake.wait_url && !m.ssh && !m.agent)
      issues.push({
        file,
        path: `machines.${id}.wake`,
        message:
          'needs something to wait for after waking: set machines.' + id + '.ssh (its port is probed) or wake.wait_url',
      });
  }
  for (const [id, svc] of Object.entries(config.services)) {
    if (svc.launcher?.type !== 'process') continue;
    // A process launcher spawns a child of the gateway, or of the machine's agent (SPEC §15):
    // it can only run on the gateway's machine or on a machine with an `agent`.
    const order = machineOrder(svc, config);
    const elsewhere = order.ids.filter((m) => m !== LOCAL_MACHINE_ID && !config.machines[m]?.agent);
    if (elsewhere.length > 0)
      issues.push({
        file,
        path: `services.${id}.launcher`,
        message: `is a process launcher, which runs on the gateway's own machine ('${LOCAL_MACHINE_ID}'), but ${describeOrderSource(id, order)} places it on ${elsewhere.join(', ')}; give those machines an \`agent\` (hestia agent), or use an ssh (or docker/slurm/http) launcher for other machines`,
      });
  }
  return issues;
}

/** Values echoed in messages (`got "http://u:pw@…"`) never show a secret. */
/** At most this many values once aliases are expanded (a 2,000-service file has ~60,000). */
export const MAX_CONFIG_VALUES = 1_000_000;

/**
 * A copy of the parsed document in which every alias is a value of its own. The parser returns
 * an alias as the anchored object itself: the environment overrides, which write into the
 * config in place, would then change every place the anchor is used (`B_BASE_URL` also
 * changing `a`), and a few nested aliases (an "alias bomb") would expand to millions of values
 * later, in validation or when the config is printed. Counting while copying stops that here.
 */
function unshared(value: unknown): unknown {
  let budget = MAX_CONFIG_VALUES;
  const inProgress = new Set<object>();
  const copy = (v: unknown): unknown => {
    if (--budget < 0) throw new Error(`aliases expand to more than ${MAX_CONFIG_VALUES.toLocaleString('en')} values`);
    if (v === null || typeof v !== 'object') return v;
    if (inProgress.has(v)) throw new Error('an alias refers to the collection it is in');
    inProgress.add(v);
    try {
      if (Array.isArray(v)) return v.map(copy);
      const out: Record<string, unknown> = {};
      // A `__proto__` key stays a key (an assignment would set the copy's prototype).
      for (const [k, x] of Object.entries(v))
        Object.defineProperty(out, k, { value: copy(x), enumerable: true, writable: true, configurable: true });
      return out;
    } finally {
      inProgress.delete(v);
    }
  };
  return copy(value);
}

function masked(i: ConfigIssue): ConfigIssue {
  return { ...i, message: maskText(i.message) };
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = `${i.path}\0${i.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function zodIssue(file: string, iss: z.core.$ZodIssue, raw: Raw): ConfigIssue {
  const path = iss.path.map(String).join('.');
  let message = iss.message;
  if (iss.code === 'invalid_union' && valueAt(raw, iss.path) === undefined) {
    message = 'is required';
  } else if (iss.code === 'invalid_union') {
    // zod says only "Invalid input": say what each branch accepts (`a string or a list of strings`).
    const got = describeValue(valueAt(raw, iss.path));
    const expected = describeUnion(iss.errors);
    if (!/^Invalid input\b/.test(iss.message)) message = `${iss.message}, got ${got}`;
    else if (expected) message = `must be ${expected}, got ${got}`;
  } else if (iss.code === 'invalid_type') {
    const got = valueAt(raw, iss.path);
    // A schema's own wording ("must be a URL string") beats zod's default ("Invalid input: …").
    const own = /^Invalid input\b/.test(iss.message) ? null : iss.message;
    message =
      got === undefined
        ? 'is required'
        : `${own ?? `must be ${expectedNoun(iss.expected)}`}, got ${describeValue(got)}`;
  } else if (iss.code === 'too_small' || iss.code === 'too_big') {
    const got = valueAt(raw, iss.path);
    if (typeof got === 'number' && !message.includes('got')) message = `${message}, got ${got}`;
  }
  return { file, path, message };
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = raw;
  for (const k of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

// --- unknown keys -----------------------------------------------------------------------------

type Def = {
  type: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
  catchall?: z.ZodType;
};
const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

export interface UnknownKey {
  /** Dotted path of the key. */
  path: string;
  key: string;
  /** The keys known at that place (for "did you mean"). */
  known: string[];
}

/** Walk `value` along `schema` and list the keys the schema does not know. */
export function unknownKeys(schema: z.ZodType, value: unknown, path: string[]): UnknownKey[] {
  let def = defOf(schema);
  while (def.innerType) def = defOf(def.innerType);
  if (def.type === 'object' && def.shape && isObj(value)) {
    // A catch-all (passthrough) object accepts anything extra.
    if (def.catchall && defOf(def.catchall).type !== 'never') return [];
    const out: UnknownKey[] = [];
    for (const [k, v] of Object.entries(value)) {
      const child = def.shape[k];
      if (!child) out.push({ path: [...path, k].join('.'), key: k, known: Object.keys(def.shape) });
      else out.push(...unknownKeys(child, v, [...path, k]));
    }
    return out;
  }
  if (def.type === 'record' && def.valueType && isObj(value))
    return Object.entries(value).flatMap(([k, v]) => unknownKeys(def.valueType as z.ZodType, v, [...path, k]));
  if (def.type === 'array' && def.element && Array.isArray(value))
    return value.flatMap((v, i) => unknownKeys(def.element as z.ZodType, v, [...path, String(i)]));
  if (def.type === 'union' && def.options && isObj(value)) {
    // Discriminated by `type`: check against the option whose literal matches.
    const opt = def.options.find((o) => {
      const d = defOf(o);
      const t = d.shape?.type ? defOf(d.shape.type) : undefined;
      return (t as { values?: unknown[] } | undefined)?.values?.includes(value.type);
    });
    return opt ? unknownKeys(opt, value, path) : [];
  }
  return [];
}
