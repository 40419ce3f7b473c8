/**
 * The `http` launcher (SPEC §5): start = one request to `start_url`, stop = one request to
 * `stop_url` (none configured: stop does nothing remotely). For services another system
 * starts on demand: a cloud function, a home-automation webhook, a VM API.
 *
 * - `method` (POST), `headers`, `body` (a string is sent as is; anything else is JSON-encoded
 *   with `content-type: application/json` unless a content-type header is given).
 *   `{host}`, `{machine}`, `{port}`, `{service}` are substituted in URLs, header values and
 *   string values inside the body.
 * - 2xx = success; any other status is a LaunchError with the status and a bounded excerpt
 *   of the answer. The whole exchange is bounded by `timeout_ms`.
 * - Header values are never logged or put in messages: they often carry tokens.
 */
import { request } from 'undici';
import type { HttpLauncherConfig } from '../../config/schema.ts';
import { excerpt } from '../excerpt.ts';
import {
  expandTemplate,
  type LaunchContext,
  LaunchError,
  type Launcher,
  type LauncherFactory,
  type LaunchHandle,
  type TemplateVars,
} from '../types.ts';

/** Expand templates in every string inside a JSON-like value. */
function expandDeep(value: unknown, vars: TemplateVars): unknown {
  if (typeof value === 'string') return expandTemplate(value, vars);
  if (Array.isArray(value)) return value.map((v) => expandDeep(v, vars));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandDeep(v, vars)]));
  return value;
}

/** The URL without query string or userinfo, safe for messages (queries may carry tokens). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '<invalid url>';
  }
}

export const createHttpLauncher: LauncherFactory<HttpLauncherConfig> = (config, _deps): Launcher => {
  const call = async (what: 'start' | 'stop', urlTemplate: string, ctx: LaunchContext, signal?: AbortSignal) => {
    const url = expandTemplate(urlTemplate, ctx.vars);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(config.headers)) headers[k.toLowerCase()] = expandTemplate(v, ctx.vars);
    let body: string | null = null;
    if (config.body !== undefined && config.body !== null) {
      if (typeof config.body === 'string') body = expandTemplate(config.body, ctx.vars);
      else {
        body = JSON.stringify(expandDeep(config.body, ctx.vars));
        headers['content-type'] ??= 'application/json';
      }
    }
    const method = config.method.toUpperCase();
    const where = `${method} ${safeUrl(url)}`;
    const timeout = AbortSignal.timeout(config.timeout_ms);
    ctx.log.debug({ event_type: 'launcher_http', action: what, method, url: safeUrl(url) }, `http ${what} request`);
    let status: number;
    let text: string;
    try {
      const r = await request(url, {
        method: method as 'POST',
        headers,
        body,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        headersTimeout: config.timeout_ms,
        bodyTimeout: config.timeout_ms,
      });
      status = r.statusCode;
      text = await r.body.text();
    } catch (err) {
      if (signal?.aborted)
        throw new LaunchError(`http ${what} (${where}) aborted`, { url: safeUrl(url), reason: 'aborted' });
      const e = err as NodeJS.ErrnoException;
      const why = timeout.aborted ? `no answer within ${config.timeout_ms} ms` : `${e.code ?? ''} ${e.message}`.trim();
      throw new LaunchError(`http ${what} (${where}) failed: ${why}`, {
        url: safeUrl(url),
        code: e.code,
        timedOut: timeout.aborted,
      });
    }
    if (status < 200 || status > 299) {
      const bodyExcerpt = excerpt(text, 300);
      throw new LaunchError(`http ${what} (${where}) answered ${status}${bodyExcerpt ? `: ${bodyExcerpt}` : ''}`, {
        url: safeUrl(url),
        status,
        body: bodyExcerpt,
      });
    }
    return { status, text };
  };

  return {
    type: 'http',

    async start(ctx: LaunchContext): Promise<LaunchHandle> {
      const r = await call('start', config.start_url, ctx, ctx.signal);
      return { info: { http_status: r.status } };
    },

    async stop(_handle: LaunchHandle, ctx: LaunchContext): Promise<void> {
      if (!config.stop_url) {
        ctx.log.info({ event_type: 'launcher_http' }, 'http launcher has no stop_url; nothing stopped remotely');
        return;
      }
      await call('stop', config.stop_url, ctx);
    },
  };
};

export default createHttpLauncher;
