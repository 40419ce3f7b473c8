/**
 * The refusals every proxied request and WebSocket upgrade goes through before anything is
 * acquired: shutting down, method, service id, path safety, and the auth hook.
 *
 * ## Methods (decision)
 * GET HEAD POST PUT PATCH DELETE OPTIONS are forwarded (SPEC §2), and so is any other method
 * Node's parser accepts (WebDAV's PROPFIND/MKCOL/…, PURGE, QUERY): a transparent proxy should
 * not break a WebDAV or CalDAV service. TRACE is refused with 405: it would reflect the
 * client's headers, cookies included, back from the upstream (cross-site tracing), and nothing
 * legitimate needs it through a gateway. CONNECT never reaches this handler (Node closes the
 * connection when the server has no 'connect' listener); should one arrive it also gets 405.
 */
import type { IncomingMessage } from 'node:http';
import { HestiaError, unknownServiceError } from '../errors.ts';
import type { ServiceHandle } from '../services/types.ts';
import type { ProxyContext } from './proxy-context.ts';
import { escapesBase, splitServicePath } from './target-path.ts';

const REFUSED_METHODS: ReadonlySet<string> = new Set(['TRACE', 'CONNECT']);
const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

export type CheckResult =
  | { readonly error: HestiaError; readonly service: ServiceHandle | null; readonly rest: ''; readonly authed: false }
  | { readonly error: null; readonly service: ServiceHandle; readonly rest: string; readonly authed: boolean };

/** Refusals shared by HTTP requests and upgrades; on success, the service and the raw rest. */
export function checkRequest(core: ProxyContext, req: IncomingMessage): CheckResult {
  const ctx = core.ctx;
  if (ctx.shuttingDown) {
    return {
      error: new HestiaError('HESTIA_SHUTTING_DOWN', 'hestia is shutting down'),
      service: null,
      rest: '',
      authed: false,
    };
  }
  if (REFUSED_METHODS.has(req.method ?? '')) {
    const error = new HestiaError(
      'HESTIA_METHOD_NOT_ALLOWED',
      `method ${req.method} is not proxied`,
      {},
      { allow: ALLOW },
    );
    return { error, service: null, rest: '', authed: false };
  }
  const sp = splitServicePath(req.url ?? '');
  if (sp === null) {
    const error = new HestiaError('HESTIA_NOT_FOUND', 'no service id in the path: use /services/{id}/…', {
      services: ctx.services.ids(),
    });
    return { error, service: null, rest: '', authed: false };
  }
  const service = ctx.services.get(sp.id);
  if (service === undefined)
    return { error: unknownServiceError(sp.id, ctx.services.ids()), service: null, rest: '', authed: false };
  if (escapesBase(sp.rest)) {
    const error = new HestiaError('HESTIA_BAD_REQUEST', 'the path climbs above the service root with ..', {
      serviceId: service.id,
    });
    return { error, service, rest: '', authed: false };
  }
  // AUTH HOOK (HTTP requests and WebSocket upgrades alike): see ProxyHooks.authorize.
  const verdict = core.hooks.authorize?.(req, service.id);
  if (verdict === undefined) return { error: null, service, rest: sp.rest, authed: false };
  if (verdict !== null) return { error: verdict, service, rest: '', authed: false };
  // Allowed: the hook may have stripped the gateway's credentials from req.headers.
  return { error: null, service, rest: sp.rest, authed: true };
}
