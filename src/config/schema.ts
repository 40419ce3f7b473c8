/**
 * The configuration schema: the single source of types, defaults and environment names.
 *
 * - Types: `Config`, `ServiceConfig`, … are inferred from these zod schemas.
 * - Defaults: every `.default()` here is the default (the original Python Hestia's defaults
 *   where the field existed there; SPEC §3).
 * - Env names: every *scalar* field of a service (string, number, boolean, enum) can be set with
 *   `<ID>_<FIELD>` (see env.ts, which reads the shape of `serviceSchema` to find them).
 *
 * Unknown keys are not errors (they are warnings with a "did you mean", found by resolve.ts
 * walking these shapes; errors with `server.strict_config: true`), so the objects here strip them.
 */

import { z } from 'zod';
import { closestKey as closestName } from './closest-name.ts';
import { CHECKOUT_DB_PATH } from './default-paths.ts';
import { parseKeepWarmWindow } from './keep-warm.ts';

const nonNegInt = (what = 'a whole number') =>
  z
    .number({ error: `must be ${what}` })
    .int({ error: 'must be a whole number' })
    .min(0, { error: 'must be >= 0' });
const ms = () => nonNegInt('a duration in milliseconds');

/** URL templates may contain {host}, {machine}, {port}; validated after a sample substitution. */
const TEMPLATE_SAMPLE: Record<string, string> = { host: 'localhost', machine: 'local', port: '80' };
function isHttpUrlTemplate(value: string): boolean {
  const sample = value.replace(/\{(host|machine|port)\}/g, (_m, k: string) => TEMPLATE_SAMPLE[k] ?? '');
  try {
    const u = new URL(sample);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}
export const httpUrl = () =>
  z.string({ error: 'must be a URL string' }).refine(isHttpUrlTemplate, {
    error: (iss) => `must be an http:// or https:// URL, got ${JSON.stringify(iss.input)}`,
  });

const stringList = () => z.array(z.string());
/** A DNS name (labels of letters, digits, `-`, `_`), lowercased, a trailing dot dropped. */
const HOST_NAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;
const hostName = () =>
  z
    .string()
    .transform((v) => v.toLowerCase().replace(/\.$/, ''))
    .refine((v) => HOST_NAME.test(v), {
      error: (iss) =>
        `is not a host name (letters, digits, '-', '.'; no port, scheme or path), got ${JSON.stringify(iss.input)}`,
    });
/** `listen: 8188` or `"ADDR:PORT"` (`"[::1]:8188"`); 0 = any free port (tests). */
const listenSchema = () =>
  z.union([
    z.number().int().min(0).max(65535),
    z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):\d{1,5}$/, {
      error: 'must be a port (8188) or "ADDR:PORT" ("0.0.0.0:8188")',
    }),
  ]);
const isMac = (v: string) => /^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$/i.test(v.trim()) || /^[0-9a-f]{12}$/i.test(v.trim());
const stringMap = () => z.record(z.string(), z.string());
const COMMAND_TYPE = 'must be a string (run by /bin/sh -c) or a list of strings (argv)';

// ---------------------------------------------------------------------------------------------
// Launchers (SPEC §5). One schema per type; the core only ever sees `LauncherConfig`.
// ---------------------------------------------------------------------------------------------

export const noneLauncherSchema = z.object({ type: z.literal('none') });

export const processLauncherSchema = z.object({
  type: z.literal('process'),
  /** argv array (no shell), or a string run by `/bin/sh -c`. */
  command: z.union(
    [z.string().min(1, { error: 'must not be empty' }), z.array(z.string()).min(1, { error: 'must not be empty' })],
    { error: COMMAND_TYPE },
  ),
  cwd: z.string().optional(),
  env: stringMap().default({}),
  stop_signal: z.string().default('SIGTERM'),
  stop_timeout_ms: ms().default(10_000),
});

export const sshLauncherSchema = z.object({
  type: z.literal('ssh'),
  machine: z.string().optional(),
  command: z.string().min(1),
  stop_command: z.string().optional(),
  /** Exit 0 = running. Used for adopting after a restart and, with watch_interval_ms, crash detection. */
  is_running_command: z.string().optional(),
  /** Bound on each remote command (connect + run). */
  timeout_ms: ms().default(30_000),
  /**
   * While hot, run is_running_command this often; a non-zero exit means the remote server
   * died (service_crashed). 0 = off (each check is one SSH connection).
   */
  watch_interval_ms: ms().default(0),
  /**
   * Followed while the service is hot, its output into the service's output ring (SPEC §12),
   * e.g. `tail -n 0 -F ~/comfy.log`. Restarted if it ends while the service runs.
   */
  log_command: z.string().optional(),
});

export const dockerLauncherSchema = z.object({
  type: z.literal('docker'),
  container: z.string().min(1),
  socket: z.string().default('/var/run/docker.sock'),
  docker_host: z.string().optional(),
  stop_timeout_s: nonNegInt().default(10),
  /** Container create settings, used only when the container does not exist yet. */
  create: z
    .object({
      image: z.string().min(1),
      cmd: stringList().optional(),
      env: stringMap().default({}),
      network_mode: z.string().default('host'),
      /** Run a tiny init as PID 1 (HostConfig.Init): forwards SIGTERM, so stop is quick. */
      init: z.boolean().default(true),
      /** HostConfig.Ulimits, e.g. `{nofile: 4096, nproc: 4096}` (soft = hard). Empty = daemon defaults. */
      ulimits: z.record(z.string(), z.number().int().min(0)).default({}),
    })
    .optional(),
});

export const slurmLauncherSchema = z.object({
  type: z.literal('slurm'),
  command: z.string().min(1),
  job_name: z.string().optional(),
  partition: z.string().optional(),
  time: z.string().optional(),
  gres: z.string().optional(),
  sbatch_args: stringList().default([]),
  machine: z.string().optional(),
  env: stringMap().default({}),
  /** How often squeue is asked while waiting for RUNNING (and after scancel). */
  poll_interval_ms: ms().default(500),
  /** How often squeue is asked whether a running job has ended on its own (crash detection). */
  watch_interval_ms: ms().default(5_000),
  /** Bound on each Slurm CLI call (sbatch, squeue, scancel), and on waiting for a cancelled job to leave. */
  timeout_ms: ms().default(30_000),
});

export const semaphoreLauncherSchema = z.object({
  type: z.literal('semaphore'),
});

export const httpLauncherSchema = z.object({
  type: z.literal('http'),
  start_url: httpUrl(),
  stop_url: httpUrl().optional(),
  method: z.string().default('POST'),
  headers: stringMap().default({}),
  body: z.unknown().optional(),
  timeout_ms: ms().default(30_000),
});

export const launcherSchema = z.discriminatedUnion(
  'type',
  [
    noneLauncherSchema,
    processLauncherSchema,
    sshLauncherSchema,
    dockerLauncherSchema,
    slurmLauncherSchema,
    semaphoreLauncherSchema,
    httpLauncherSchema,
  ],
  { error: 'must be one of: none, process, ssh, docker, slurm, semaphore, http' },
);

// ---------------------------------------------------------------------------------------------
// Services (SPEC §3)
// ---------------------------------------------------------------------------------------------

export const instanceSchema = z.object({
  url: httpUrl(),
  weight: z.number().positive({ error: 'must be > 0' }).default(1),
  region: z.string().optional(),
});

export const busyCheckSchema = z.object({
  url: httpUrl(),
  /** Dotted path into the JSON answer, e.g. `exec_info.queue_remaining`. */
  json_path: z.string().optional(),
  /** The service is busy when the value at json_path equals this (or, without json_path, on 2xx). */
  equals: z.unknown().optional(),
  timeout_ms: ms().default(2_000),
});

export const serviceSchema = z.object({
  base_url: httpUrl(),
  health_url: httpUrl().nullish(),
  warmup_ms: ms().default(0),
  idle_timeout_ms: ms().default(0),
  retry_count: nonNegInt().default(1),
  retry_delay_ms: ms().default(0),
  fallback_url: httpUrl().nullish(),
  queue_size: z
    .number()
    .int()
    .min(1, { error: (iss) => `must be >= 1, got ${String(iss.input)}` })
    .default(100),
  request_timeout_seconds: z
    .number()
    .min(1, { error: (iss) => `must be >= 1, got ${String(iss.input)}` })
    .default(60),

  /**
   * A server already answering at base_url/health_url when Hestia is about to launch the service
   * (one it did not start) is used as the service instead of refusing the start.
   */
  adopt_running: z.boolean().default(false),

  // Routing (SPEC §7)
  strategy: z.string().nullish(),
  instances: z.array(instanceSchema).default([]),
  routing: z
    .object({
      model_key: z.string().default('model'),
      by_model: z.record(z.string(), httpUrl()).default({}),
      /** Most request-body bytes a `json_body` strategy (model_router) reads before deciding. */
      body_cap_bytes: nonNegInt().default(1024 * 1024),
      /** How long an instance that failed to connect is skipped before it is tried again. */
      cooldown_ms: ms().default(30_000),
    })
    .passthrough()
    .optional(),

  // The original's Semaphore fields (SPEC §3, §5)
  semaphore_enabled: z.boolean().default(false),
  semaphore_machine_id: z.string().nullish(),
  semaphore_start_template_id: nonNegInt().default(1),
  semaphore_stop_template_id: nonNegInt().default(2),
  semaphore_task_timeout: z.number().positive().default(300),
  semaphore_poll_interval: z.number().positive().default(2.0),
  semaphore_project_id: nonNegInt().default(1),

  // New in this Hestia
  launcher: launcherSchema.optional(),
  machines: stringList().default([]),
  tags: stringList().default([]),
  /**
   * Model names (and aliases) clients may send as `model` to the model endpoint (`/v1/chat/…`,
   * `/api/chat`, …); unique across services.
   */
  models: z.array(z.string().trim().min(1, { error: 'must not be empty' })).default([]),
  health_interval_ms: z.number().int().min(10, { error: 'must be >= 10' }).default(250),
  start_timeout_ms: ms().default(120_000),
  /**
   * How long a start waits for services busy with requests to finish them and make room on a
   * machine (swapping, SPEC §6); default: start_timeout_ms; 0 = fail at once (HESTIA_NO_CAPACITY).
   */
  capacity_wait_ms: ms().optional(),
  /**
   * After a failed start, starts triggered by requests are refused for this long (doubling per
   * further failure up to 60 s, reset by a successful start); 0 = no backoff (SPEC §12).
   */
  start_backoff_ms: ms().default(5_000),
  /** The service's output ring (SPEC §12): most lines and bytes kept (oldest dropped first). */
  output_lines: z.number().int().min(1, { error: 'must be >= 1' }).default(1_000),
  output_bytes: z
    .number()
    .int()
    .min(1024, { error: 'must be >= 1024' })
    .default(1024 * 1024),
  websocket_keeps_alive: z.boolean().default(false),
  waiting_page: z.boolean().default(false),
  max_concurrency: z.number().int().min(1, { error: 'must be >= 1' }).nullish(),
  busy_check: busyCheckSchema.optional(),
  requires: z.record(z.string(), z.number().min(0)).default({}),
  /** Longest wait for upstream response headers; 0 = no limit. */
  upstream_headers_timeout_ms: ms().default(600_000),
  /** Longest gap between two upstream body chunks; 0 = no limit. */
  upstream_body_timeout_ms: ms().default(600_000),
  /**
   * Most connections the gateway opens to one upstream origin for this service; further
   * requests wait inside the gateway (their header/body timeouts start only once they are
   * sent). Keeps a burst (a cold start's whole queue) from overflowing the upstream's listen
   * backlog. 0 = no limit.
   */
  upstream_max_connections: nonNegInt().default(128),

  // Lifecycle policies (docs/lifecycle-policies.md; cross-service rules in policy-rules.ts)
  /** Start when the gateway starts (after re-adoption) and when a reload adds it. */
  preload: z.boolean().default(false),
  /** Local-time windows ("Mon-Fri 08:00-18:00") in which it is started and never idle-stopped. */
  keep_warm: z
    .array(
      z.string({ error: 'must be a string like "Mon-Fri 08:00-18:00"' }).superRefine((v, ctx) => {
        const r = parseKeepWarmWindow(v);
        if (!r.ok) ctx.addIssue({ code: 'custom', message: r.error });
      }),
    )
    .default([]),
  /** Services started (and ready) before this one; stopping one of them stops this one first. */
  depends_on: stringList().default([]),
  /** Services of a group start together and are idle-stopped together. */
  group: z.string().min(1, { error: 'must not be empty' }).nullish(),
  /** `pause`: the idle stop freezes it (SIGSTOP / docker pause) and the next start resumes it. */
  stop_mode: z.enum(['stop', 'pause'], { error: "must be 'stop' or 'pause'" }).default('stop'),

  // Doors (SPEC §10, docs/doors.md): names whose `Host` picks this service; an extra listener.
  hosts: z.array(hostName()).default([]),
  listen: listenSchema().nullish(),
});

// ---------------------------------------------------------------------------------------------
// Machines (SPEC §6)
// ---------------------------------------------------------------------------------------------

export const sshSettingsSchema = z.object({
  user: z.string().default('root'),
  port: z.number().int().min(1).max(65535).default(22),
  identity_file: z.string().optional(),
  known_hosts: z.string().optional(),
  host_key_sha256: z.string().optional(),
  connect_timeout_ms: ms().default(10_000),
});

/**
 * A machine's `wake` or `sleep` action (SPEC §6; behaviour in src/machines/power.ts). The wait
 * fields only matter for `wake`, `idle_sleep_ms` only for `sleep`.
 */
const powerActionSchema = z
  .object({
    type: z.enum(['wol', 'command', 'ssh', 'http']),
    // wol: magic packet to address:port (default the global broadcast 255.255.255.255:9;
    // set the LAN's directed broadcast, e.g. 192.168.1.255)
    mac: z.string().optional(),
    address: z.string().optional(),
    port: z.number().int().min(1).max(65535).optional(),
    // command (local: argv, or a string run by /bin/sh -c) / ssh (a string, run on `machine`)
    command: z.union([z.string(), z.array(z.string())], { error: COMMAND_TYPE }).optional(),
    /** ssh: the machine to run the command on (default: this machine; a wake usually names another). */
    machine: z.string().optional(),
    // http
    url: httpUrl().optional(),
    method: z.string().optional(),
    headers: stringMap().optional(),
    body: z.unknown().optional(),
    // waiting for the machine after a wake: wait_url answering 2xx, else the ssh port
    wait_url: httpUrl().optional(),
    wait_timeout_ms: ms().default(120_000),
    /** How often the machine is probed while waiting for it to answer. */
    wait_interval_ms: z.number().int().min(10, { error: 'must be >= 10' }).default(1_000),
    idle_sleep_ms: ms().default(1_800_000),
    /** Bound on the action itself (command, ssh command, http request). */
    timeout_ms: ms().default(30_000),
  })
  .superRefine((v, ctx) => {
    if (v.type === 'wol' && !v.mac)
      ctx.addIssue({ code: 'custom', path: ['mac'], message: 'is required for type wol' });
    if (v.type === 'wol' && v.mac && !isMac(v.mac))
      ctx.addIssue({
        code: 'custom',
        path: ['mac'],
        message: `must be a MAC address like aa:bb:cc:dd:ee:ff, got ${JSON.stringify(v.mac)}`,
      });
    if (v.type === 'ssh' && Array.isArray(v.command))
      ctx.addIssue({
        code: 'custom',
        path: ['command'],
        message: 'must be a string for type ssh (a remote shell command)',
      });
    if ((v.type === 'command' || v.type === 'ssh') && !v.command)
      ctx.addIssue({ code: 'custom', path: ['command'], message: `is required for type ${v.type}` });
    if (v.type === 'http' && !v.url)
      ctx.addIssue({ code: 'custom', path: ['url'], message: 'is required for type http' });
  });

/** `hestia agent` on a machine (SPEC §15; the client is src/remote/agent/). */
export const machineAgentSchema = z.object({
  url: httpUrl(),
  /** Also from the environment: `<MACHINE>_AGENT_TOKEN` (config/env.ts). */
  token: z
    .string({ error: 'is required: set it here or in the environment variable <MACHINE>_AGENT_TOKEN' })
    .min(1, { error: 'must not be empty' }),
  /** PEM CA bundle that signs the agent's TLS certificate (for an https url with a private CA). */
  ca_file: z.string().optional(),
});

export const machineSchema = z.object({
  host: z.string().min(1),
  agent: machineAgentSchema.optional(),
  ssh: sshSettingsSchema.optional(),
  tags: stringList().default([]),
  /** Numbers, or `gpu_mem_mb: auto` (from the machine's agent's report, SPEC §15). */
  capacity: z.record(z.string(), z.union([z.number().min(0), z.literal('auto')])).default({}),
  wake: powerActionSchema.optional(),
  sleep: powerActionSchema.optional(),
});

export const placementRuleSchema = z.object({
  match: z.object({ tags: stringList().default([]) }),
  machines: stringList().min(1),
});

// ---------------------------------------------------------------------------------------------
// Auth (SPEC §8)
// ---------------------------------------------------------------------------------------------

export const authSchema = z.object({
  enabled: z.boolean().default(false),
  api_keys: z
    .array(
      z.object({
        name: z.string().min(1),
        sha256: z.string().regex(/^[0-9a-f]{64}$/i, { error: 'must be 64 hex characters (a SHA-256 digest)' }),
        services: stringList().optional(),
      }),
    )
    .default([]),
  /** Paths outside /services and /v1 that still need a key. */
  protect_metrics: z.boolean().default(true),
  protect_healthz: z.boolean().default(false),
  dashboard: z
    .object({
      username: z.string().min(1),
      /** `scrypt$N$r$p$salt_b64$hash_b64`, made by `hestia hash-password`. */
      password_hash: z.string().regex(/^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/, {
        error: 'must be a scrypt hash made by `hestia hash-password` (scrypt$N$r$p$salt$hash)',
      }),
      session_ttl_ms: ms().default(12 * 3600_000),
    })
    .optional(),
});

// ---------------------------------------------------------------------------------------------
// Top level
// ---------------------------------------------------------------------------------------------

export const serverSchema = z.object({
  host: z.string().default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8080),
  db_path: z.string().default(CHECKOUT_DB_PATH),
  log_level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
  /** How long in-flight requests may finish after SIGTERM before they are cut. */
  shutdown_grace_ms: ms().default(10_000),
  /** `X-Forwarded-*` from clients are trusted (appended to) only when this is true. */
  trust_proxy: z.boolean().default(false),
  /**
   * A request whose body stops arriving for this long gets 408 (an idle timeout: uploads have no
   * total time limit). Read at start.
   */
  request_idle_timeout_ms: ms().default(60_000),
  /**
   * MiB of `POST /v1/requests` bodies held at once (waiting in queues or in flight) across all
   * services; a dispatch that would exceed it gets 503 before its body is read.
   */
  dispatch_buffer_mb: z.number().int().min(1).default(64),
  /** Unknown keys are errors (exit 1) instead of warnings. Off by default: the original's files load. */
  strict_config: z.boolean().default(false),
  /**
   * The model endpoints (SPEC §11): most JSON body bytes read to find its `model` (a multipart
   * form's `model` field must come within them). Larger bodies are refused with 413.
   */
  model_body_cap_bytes: nonNegInt().default(8 * 1024 * 1024),
  /** Every service also answers at the host `{id}.<service_domain>` (SPEC §10). */
  service_domain: hostName().nullish(),
  /** With auth off, other names Hestia answers to (a reverse proxy's, a LAN name): docs/doors.md. */
  allowed_hosts: z.array(hostName()).default([]),
});

// ---------------------------------------------------------------------------------------------
// Event webhooks (docs/webhooks.md)
// ---------------------------------------------------------------------------------------------

/**
 * Event types a webhook may subscribe to: observability/events.ts's EventType (webhooks.ts checks
 * at compile time that the two lists match). `*` = every event.
 */
export const WEBHOOK_EVENT_TYPES = [
  'service_start',
  'service_ready',
  'service_start_failed',
  'service_stop',
  'service_stopped',
  'idle_shutdown',
  'service_crashed',
  'service_adopted',
  'service_paused',
  'state_change',
  'queue_rejected',
  'queue_timeout',
  'proxy_retry',
  'proxy_fallback',
  'proxy_error',
  'auth_denied',
  'config_reloaded',
  'machine_wake',
  'machine_sleep',
  'machine_failover',
  'agent_unreachable',
  'agent_reconnected',
  'capacity_eviction',
  'webhook_failed',
] as const;

const webhookEventName = () =>
  z.string({ error: 'must be an event name' }).superRefine((v, ctx) => {
    if (v === '*' || (WEBHOOK_EVENT_TYPES as readonly string[]).includes(v)) return;
    const guess = closestName(v, WEBHOOK_EVENT_TYPES);
    ctx.addIssue({
      code: 'custom',
      message: `unknown event ${JSON.stringify(v)}${guess ? `; did you mean ${guess}?` : ''} (known: ${WEBHOOK_EVENT_TYPES.join(', ')}, or * for all)`,
    });
  });

export const webhookSchema = z.object({
  url: httpUrl(),
  events: z.array(webhookEventName()).min(1, { error: 'must name at least one event (or *)' }),
  /** Sent with every POST (e.g. Authorization); shown masked by check-config. */
  headers: stringMap().default({}),
  /** One POST's limit; 0 = none. */
  timeout_ms: ms().default(10_000),
  /** Tries per event (the first included) before it is given up (and counted as failed). */
  max_attempts: z.number().int().min(1).max(20).default(5),
  /** Pause before the first retry; doubles each retry, up to 60 s. */
  retry_delay_ms: ms().default(1_000),
  /** Events waiting for this receiver; beyond it the oldest is dropped (and counted). */
  queue_size: z.number().int().min(1).default(1_000),
});

export const eventsSchema = z.object({
  retention_max_events: z.number().int().min(100).default(10_000),
  retention_max_age_days: z.number().min(0).default(30),
});

export const configSchema = z.object({
  server: serverSchema.default(() => serverSchema.parse({})),
  services: z.record(z.string(), serviceSchema).default({}),
  machines: z.record(z.string(), machineSchema).default({}),
  placement_rules: z.array(placementRuleSchema).default([]),
  auth: authSchema.default(() => authSchema.parse({})),
  events: eventsSchema.default(() => eventsSchema.parse({})),
  webhooks: z.array(webhookSchema).default([]),
  strategies_dir: z.string().default('./strategies'),
  dispatcher: z
    .object({ max_response_bytes: nonNegInt().default(10 * 1024 * 1024) })
    .default({ max_response_bytes: 10 * 1024 * 1024 }),

  // The original's global Semaphore settings
  semaphore_base_url: httpUrl().nullish(),
  semaphore_timeout: z.number().positive().default(30),
  semaphore_api_key: z.string().nullish(),
  semaphore_username: z.string().nullish(),
  semaphore_password: z.string().nullish(),
});

export type Config = z.infer<typeof configSchema>;
export type ServiceConfig = z.infer<typeof serviceSchema>;
export type MachineConfig = z.infer<typeof machineSchema>;
export type MachineAgentConfig = z.infer<typeof machineAgentSchema>;
export type LauncherConfig = z.infer<typeof launcherSchema>;
export type LauncherType = LauncherConfig['type'];
export type ProcessLauncherConfig = z.infer<typeof processLauncherSchema>;
export type SshLauncherConfig = z.infer<typeof sshLauncherSchema>;
export type DockerLauncherConfig = z.infer<typeof dockerLauncherSchema>;
export type SlurmLauncherConfig = z.infer<typeof slurmLauncherSchema>;
export type HttpLauncherConfig = z.infer<typeof httpLauncherSchema>;
export type InstanceConfig = z.infer<typeof instanceSchema>;
export type BusyCheckConfig = z.infer<typeof busyCheckSchema>;
export type AuthConfig = z.infer<typeof authSchema>;
export type ServerConfig = z.infer<typeof serverSchema>;
export type PowerActionConfig = z.infer<typeof powerActionSchema>;
export type WebhookConfig = z.infer<typeof webhookSchema>;

/** Config keys whose values are secrets: masked by check-config and redacted in logs. */
export const SECRET_KEYS = new Set([
  'semaphore_api_key',
  'semaphore_password',
  'password_hash',
  'password',
  'api_key',
  'token',
  'authorization',
]);
