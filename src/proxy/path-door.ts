/**
 * The proxy's door (admission.ts): HTTP requests and WebSocket upgrades to
 * `/services/{id}/…` name their service in the path. It refuses what the proxy never forwards
 * (the method; a path climbing above the service root); its auth step is the auth hook
 * (ProxyHooks.authorize, the gateway's auth on main).
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
import type { Door } from './admission.ts';
import { escapesBase, type ServicePath, splitServicePath } from './target-path.ts';

const REFUSED_METHODS: ReadonlySet<string> = new Set(['TRACE', 'CONNECT']);
const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS';

/** Door.pick for `/services/{id}{rest}`: the method, then the id in the path. */
export function pickServicePath(req: IncomingMessage): ServicePath | null | HestiaError {
  if (REFUSED_METHODS.has(req.method ?? ''))
    return new HestiaError('HESTIA_METHOD_NOT_ALLOWED', `method ${req.method} is not proxied`, {}, { allow: ALLOW });
  return splitServicePath(req.url ?? '');
}

/** Door.refuseTarget: `..` must not climb above the service's root (raw or percent-encoded). */
export function refuseEscapingPath(service: ServiceHandle, rest: string): HestiaError | null {
  if (!escapesBase(rest)) return null;
  return new HestiaError('HESTIA_BAD_REQUEST', 'the path climbs above the service root with ..', {
    serviceId: service.id,
  });
}

/**
 * Seams for colleagues' features.
 *
 * AUTH HOOK: `authorize` is called for every `/services/…` request and WebSocket upgrade after
 * the service is looked up and before anything is acquired or forwarded (admission.ts step 3),
 * also when the path names no configured service (`serviceId` undefined): that refusal (404,
 * listing the services) comes only after auth allowed the request. It answers:
 * - a HestiaError (e.g. HESTIA_UNAUTHORIZED): refused with it, nothing is forwarded;
 * - null: allowed, and the hook may have removed or rewritten the gateway's own credentials in
 *   `req.headers` (auth/request-guards.ts `gateProxyRequest` deletes X-API-Key, a gateway Bearer
 *   Authorization, and the session cookie). The proxy then forwards Authorization, Cookie and
 *   X-API-Key from `req.headers` (as the hook left them), everything else from the raw list;
 * - undefined: not checked (auth off): every header is forwarded from the raw list, and Node
 *   never has to build `req.headers` on the hot path.
 * Wiring on main (handler.ts `authHooks`): `(req, id) => (ctx.auth.enabled ? gateProxyRequest(ctx.auth, req, id) : undefined)`.
 */
export interface ProxyHooks {
  authorize?(req: IncomingMessage, serviceId: string | undefined): HestiaError | null | undefined;
  /** The same for a host or port door (origin-doors.ts), which also accepts a logged-in browser's session; default `authorize`. */
  authorizeOrigin?(req: IncomingMessage, serviceId: string | undefined): HestiaError | null | undefined;
}

/** The door of `/services/…` requests and upgrades, with the handler's auth hook. */
export function servicesPathDoor(hooks: ProxyHooks): Door<IncomingMessage> {
  const authorize = hooks.authorize;
  return {
    kind: 'path',
    pick: pickServicePath,
    refuseTarget: refuseEscapingPath,
    authorize: authorize === undefined ? undefined : (req, serviceId) => authorize.call(hooks, req, serviceId),
    unknownService: (id, known) =>
      id === null
        ? new HestiaError('HESTIA_NOT_FOUND', 'no service id in the path: use /services/{id}/…', { services: known })
        : unknownServiceError(id, known),
  };
}
