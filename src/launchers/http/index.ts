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
import type { HttpLauncherConfig } from '../../config/schema.ts';
import { HttpCallError, type HttpCallResult, safeUrl, sendHttpCall } from '../../remote/http-call.ts';
import { excerpt } from '../../remote/output-excerpt.ts';
import { type LaunchContext, LaunchError, type Launcher, type LauncherFactory, type LaunchHandle } from '../types.ts';

export const createHttpLauncher: LauncherFactory<HttpLauncherConfig> = (config, _deps): Launcher => {
  const call = async (what: 'start' | 'stop', urlTemplate: string, ctx: LaunchContext, signal?: AbortSignal) => {
    ctx.log.debug(
      { event_type: 'launcher_http', action: what, method: config.method.toUpperCase() },
      `http ${what} request`,
    );
    let r: HttpCallResult;
    try {
      r = await sendHttpCall(
        {
          url: urlTemplate,
          method: config.method,
          headers: config.headers,
          body: config.body,
          timeoutMs: config.timeout_ms,
        },
        ctx.vars,
        signal,
      );
    } catch (err) {
      if (!(err instanceof HttpCallError)) throw err;
      if (err.aborted)
        throw new LaunchError(`http ${what} (${err.where}) aborted`, { url: safeUrl(err.url), reason: 'aborted' });
      throw new LaunchError(`http ${what} (${err.where}) failed: ${err.why}`, {
        url: safeUrl(err.url),
        code: err.code,
        timedOut: err.timedOut,
      });
    }
    const { status, text } = r;
    if (status < 200 || status > 299) {
      const bodyExcerpt = excerpt(text, 300);
      throw new LaunchError(`http ${what} (${r.where}) answered ${status}${bodyExcerpt ? `: ${bodyExcerpt}` : ''}`, {
        url: safeUrl(r.url),
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
