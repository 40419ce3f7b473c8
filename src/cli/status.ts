/**
 * `hestia status [--url URL] [--api-key KEY] [--json]`: a one-screen table of the services of a
 * running gateway (state, machine, in flight, queued, last used, idle stop countdown), then one
 * line per service whose last start failed (its `lastError`), read from its `GET /v1/services`.
 *
 * - URL: `--url`, else `http://$HESTIA_HOST:$HESTIA_PORT` (defaults 127.0.0.1 and 8080; a
 *   wildcard listen address such as 0.0.0.0 is reached through 127.0.0.1).
 * - Key: `--api-key`, else `HESTIA_API_KEY`, sent as `X-API-Key` (needed when auth is on).
 * - Exit 0 with the table; 1 with one clear sentence on stderr when no gateway answers, the key
 *   is missing or refused, or the answer is not a gateway's; 2 on bad usage.
 */
import { parseArgs } from 'node:util';
import type { ServiceStatus } from '../services/types.ts';
import { ago, idleText } from '../ui/page.ts';

const USAGE = 'usage: hestia status [--url URL] [--api-key KEY] [--json]\n';
const TIMEOUT_MS = 5_000;

export function defaultUrl(env: NodeJS.ProcessEnv): string {
  let host = env.HESTIA_HOST || '127.0.0.1';
  if (host === '0.0.0.0' || host === '::' || host === '[::]') host = '127.0.0.1';
  else if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  return `http://${host}:${env.HESTIA_PORT || '8080'}`;
}

/** The table, as printed (exported for tests of the layout). */
export function formatTable(services: ServiceStatus[], now: number): string {
  const header = ['SERVICE', 'STATE', 'MACHINE', 'IN FLIGHT', 'QUEUED', 'LAST USED', 'IDLE STOP IN'];
  const rows = services.map((s) => [
    s.serviceId,
    s.state,
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
  return `${[header, ...rows].map(line).join('\n')}\n${errors.length ? `\n${errors.join('\n')}\n` : ''}`;
}

export async function statusCommand(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values: { url?: string | undefined; 'api-key'?: string | undefined; json?: boolean | undefined };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { url: { type: 'string' }, 'api-key': { type: 'string' }, json: { type: 'boolean', default: false } },
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`hestia status: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const base = (values.url ?? defaultUrl(env)).replace(/\/+$/, '');
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
    process.stderr.write(
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
    process.stderr.write(
      key
        ? `hestia status: the gateway at ${base} refused the API key: ${msg}\n`
        : `hestia status: the gateway at ${base} requires an API key: pass --api-key KEY or set HESTIA_API_KEY\n`,
    );
    return 1;
  }
  const services = (body as { services?: unknown } | null)?.services;
  if (!res.ok || !Array.isArray(services)) {
    process.stderr.write(`hestia status: ${base}/v1/services answered HTTP ${res.status}, not a Hestia service list\n`);
    return 1;
  }
  if (values.json) process.stdout.write(`${JSON.stringify({ services }, null, 2)}\n`);
  else process.stdout.write(formatTable(services as ServiceStatus[], Date.now()));
  return 0;
}
