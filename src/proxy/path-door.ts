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
import type { ProxyHooks } from './proxy-context.ts';
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

/** The door of `/services/…` requests and upgrades, with the handler's auth hook. */
export function servicesPathDoor(hooks: ProxyHooks): Door<IncomingMessage> {
  const authorize = hooks.authorize;
  return {
    pick: pickServicePath,
    refuseTarget: refuseEscapingPath,
    authorize: authorize === undefined ? undefined : (req, serviceId) => authorize.call(hooks, req, serviceId),
    unknownService: (id, known) =>
      id === null
        ? new HestiaError('HESTIA_NOT_FOUND', 'no service id in the path: use /services/{id}/…', { services: known })
        : unknownServiceError(id, known),
  };
}
