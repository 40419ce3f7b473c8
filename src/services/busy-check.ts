/**
 * `busy_check` (SPEC §5): before an idle stop, ask the service whether it is still working
 * (a Jupyter kernel running, a ComfyUI queue not empty).
 *
 * Busy means: with `json_path`, the value found there in the JSON answer equals `equals`
 * (deep equality on JSON values; without `equals`, a truthy value that is not 0 or an empty
 * array); without `json_path`, any 2xx answer. A check that fails (unreachable, timeout, not
 * JSON) counts as *not busy*: a service that cannot answer is not doing useful work, and
 * keeping it up forever on a broken check would defeat the idle stop.
 */
import { isDeepStrictEqual } from 'node:util';
import type { BusyCheckConfig } from '../config/schema.ts';
import { request } from '../http-client.ts';

export interface BusyResult {
  busy: boolean;
  /** Why, for the log: the value seen, or the error. */
  detail: string;
}

/** Walk a dotted path (`exec_info.queue_remaining`, `items.0.state`) into a JSON value. */
export function valueAtPath(root: unknown, path: string): unknown {
  let cur: unknown = root;
  for (const part of path.split('.').filter(Boolean)) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export function isBusyValue(value: unknown, equals: unknown): boolean {
  if (equals !== undefined) return isDeepStrictEqual(value, equals);
  if (Array.isArray(value)) return value.length > 0;
  return Boolean(value);
}

export async function checkBusy(check: BusyCheckConfig, url: string): Promise<BusyResult> {
  try {
    const res = await request(url, {
      method: 'GET',
      signal: AbortSignal.timeout(Math.max(1, check.timeout_ms)),
      headersTimeout: check.timeout_ms,
      bodyTimeout: check.timeout_ms,
      headers: { accept: 'application/json', 'user-agent': 'hestia-busy-check' },
      reset: true,
    });
    const ok = res.statusCode >= 200 && res.statusCode < 300;
    if (!check.json_path) {
      await res.body.dump().catch(() => {});
      return { busy: ok, detail: `status ${res.statusCode}` };
    }
    if (!ok) {
      await res.body.dump().catch(() => {});
      return { busy: false, detail: `status ${res.statusCode}` };
    }
    const value = valueAtPath(await res.body.json(), check.json_path);
    return { busy: isBusyValue(value, check.equals), detail: `${check.json_path} = ${JSON.stringify(value)}` };
  } catch (err) {
    return { busy: false, detail: `busy check failed: ${(err as Error).message}` };
  }
}
