/**
 * `hestia status [--url URL] [--api-key KEY] [--json]`: a one-screen table of the services of a
 * running gateway (state, machine, in flight, queued, last used, idle stop countdown), then one
 * line per service whose last start failed (its `lastError`), and one line per service with
 * lifecycle policies (keep-warm window, dependencies, group, preload, pause), read from its
 * `GET /v1/services`. A paused service's state reads `cold (paused)`.
 *
 * - URL: `--url` (http:// or https://, else exit 2), else the config's `server.host`/`server.port`
 *   (`--config FILE`, or the file `serve` would read, env overrides applied; defaults 127.0.0.1
 *   and 8080; a wildcard listen address such as 0.0.0.0 is reached through 127.0.0.1).
 * - Key: `--api-key`, else `HESTIA_API_KEY`, sent as `X-API-Key` (needed when auth is on).
 * - Exit 0 with the table; 1 with one clear sentence on stderr when no gateway answers, the key
 *   is missing or refused, or the answer is not a gateway's; 2 on bad usage.
 */
import type { ServiceStatus } from '../services/types.ts';
import { ago, idleText } from '../ui/page.ts';
import { parseCommandArgs } from './args.ts';
import { type CliIo, loadConfigIn, withDefaults } from './io.ts';

const USAGE = `usage: hestia status [--url URL | --config FILE] [--api-key KEY] [--json]
  The services of a running gateway. Its address: --url, else server.host/server.port of the
  config (--config FILE, $HESTIA_CONFIG_PATH or ./hestia_config.yml, with HESTIA_HOST/HESTIA_PORT
  applied), else http://127.0.0.1:8080. The key: --api-key, else $HESTIA_API_KEY.
`;
const TIMEOUT_MS = 5_000;

export function defaultUrl(env: NodeJS.ProcessEnv): string {
  return urlOf(env.HESTIA_HOST || '127.0.0.1', env.HESTIA_PORT || '8080');
}

/** Where a gateway listening on host:port is reached (a wildcard address through 127.0.0.1). */
export function urlOf(listenHost: string, port: number | string): string {
  let host = listenHost;
  if (host === '0.0.0.0' || host === '::' || host === '[::]' || host === '') host = '127.0.0.1';
  else if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  return `http://${host}:${port}`;
}

/** Why `url` cannot be a gateway's address, or null: it needs http(s):// and a host. */
export function urlProblem(url: string): string | null {
  if (!/^https?:\/\//i.test(url)) return `must start with http:// or https:// (got '${url}')`;
  try {
    new URL(url);
  } catch {
    return `is not a valid URL: '${url}'`;
  }
  return null;
}

/** The table, as printed (exported for tests of the layout). */
export function formatTable(services: ServiceStatus[], now: number): string {
  const header = ['SERVICE', 'STATE', 'MACHINE', 'IN FLIGHT', 'QUEUED', 'LAST USED', 'IDLE STOP IN'];
  const rows = services.map((s) => [
    s.serviceId,
    s.state === 'cold' && s.paused === true ? 'cold (paused)' : s.state,
    s.machineId ?? '-',
    String(s.inflight),
    String(s.queuePending),
    ago(s.lastUsedAt, now),
    idleText(s) === '—' ? '-' : idleText(s),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const numeric = new Set([3, 4]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  if (rows.length === 0) return `${line(header)}\n(no services configured)\n`;
  // Failures under the table, one line each: a message is too long for a column.
  const errors = services.flatMap((s) =>
    s.lastError ? [`${s.serviceId}: last error ${ago(s.lastError.at, now)}: ${s.lastError.message}`] : [],
  );
  const policies = services.flatMap((s) => {
    const text = policyText(s, now);
    return text ? [`${s.serviceId}: ${text}`] : [];
  });
  const block = (lines: string[]) => (lines.length ? `\n${lines.join('\n')}\n` : '');
  return `${[header, ...rows].map(line).join('\n')}\n${block(policies)}${block(errors)}`;
}

/** HH:MM of an ISO time, in local time. */
function clock(iso: string): string {
  const d = new Date(iso);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** The service's lifecycle policies in one line (empty when it has none), e.g. `keep-warm …; depends on db`. */
export function policyText(s: ServiceStatus, _now: number): string {
  const parts: string[] = [];
  const kw = s.keepWarm;
  if (kw?.windows?.length) {
    parts.push(
      kw.active
        ? `keep-warm ${kw.active} (active${kw.activeUntil ? ` until ${clock(kw.activeUntil)}` : ''})`
        : `keep-warm ${kw.windows.join(', ')}`,
    );
  }
  const deps = s.dependsOn;
  if (deps?.length) parts.push(`depends on ${deps.join(', ')}`);
  if (typeof s.group === 'string') parts.push(`group ${s.group}`);
  if (s.preload === true) parts.push('preload');
  if (s.stopMode === 'pause') parts.push(s.paused === true ? 'paused' : 'pauses when idle');
  if (typeof s.idleHold === 'string' && s.state === 'hot') parts.push(`kept up: ${s.idleHold}`);
  return parts.join('; ');
}

export async function statusCommand(argv: string[], io: CliIo = withDefaults()): Promise<number> {
  const env = io.env;
  const parsed = parseCommandArgs(io, 'hestia status', USAGE, argv, {
    url: { type: 'string' },
    config: { type: 'string', short: 'c' },
    'api-key': { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (!parsed.ok) return parsed.code;
  const { values } = parsed;
  let base: string;
  if (values.url !== undefined) {
    const problem = urlProblem(values.url);
    if (problem !== null) {
      io.stderr.write(`hestia status: --url ${problem}\n`);
      return 2;
    }
    base = values.url.replace(/\/+$/, '');
  } else {
    // The gateway's address from its config (env overrides included), as `serve` would listen.
    const loaded = loadConfigIn(io, values.config);
    if (!loaded.ok && values.config !== undefined) {
      io.stderr.write(`${loaded.message}\n`);
      return 1;
    }
    base = loaded.ok ? urlOf(loaded.config.server.host, loaded.config.server.port) : defaultUrl(env);
  }
  const key = values['api-key'] ?? env.HESTIA_API_KEY;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (key) headers['x-api-key'] = key;

  let res: Response;
  try {
    res = await fetch(`${base}/v1/services`, { headers, signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    const why =
      cause === 'ECONNREFUSED'
        ? 'connection refused'
        : cause === 'TimeoutError'
          ? `no answer within ${TIMEOUT_MS / 1000} s`
          : String(cause);
    io.stderr.write(
      `hestia status: no gateway is answering at ${base} (${why}). Is \`hestia serve\` running? Set --url or HESTIA_HOST/HESTIA_PORT.\n`,
    );
    return 1;
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (res.status === 401 || res.status === 403) {
    const msg = (body as { error?: string } | null)?.error ?? `HTTP ${res.status}`;
    io.stderr.write(
      key
        ? `hestia status: the gateway at ${base} refused the API key: ${msg}\n`
        : `hestia status: the gateway at ${base} requires an API key: pass --api-key KEY or set HESTIA_API_KEY\n`,
    );
    return 1;
  }
  const services = (body as { services?: unknown } | null)?.services;
  if (!res.ok || !Array.isArray(services)) {
    io.stderr.write(`hestia status: ${base}/v1/services answered HTTP ${res.status}, not a Hestia service list\n`);
    return 1;
  }
  if (values.json) io.stdout.write(`${JSON.stringify({ services }, null, 2)}\n`);
  else io.stdout.write(formatTable(services as ServiceStatus[], Date.now()));
  return 0;
}
