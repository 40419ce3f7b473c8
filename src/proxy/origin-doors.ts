/**
 * The whole-origin doors (SPEC §10, docs/doors.md): a request whose `Host` is one of a
 * service's names (host door) or that arrived on a service's own listener (port door) goes to
 * that service with its path unchanged (`/`, `/api/…`, `/ws`). Which service is decided before
 * the proxy (server/doors.ts: one Map lookup on the host, or the listener), so each door here is
 * built once per service and picks without looking anything up: `rest` is the raw target.
 * Method rules and path safety are the path door's; auth is the same hook.
 */
import type { IncomingMessage } from 'node:http';
import { HestiaError, unknownServiceError } from '../errors.ts';
import type { Door } from './admission.ts';
import { type ProxyHooks, pickServicePath, refuseEscapingPath } from './path-door.ts';
import type { ServicePath } from './target-path.ts';

/** The `Host` header of a request, lowercased, without port and trailing dot; '' when absent. Reads the raw list (no `req.headers`). */
export function requestHost(req: IncomingMessage): string {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') return normalizeHost(raw[i + 1]!);
  }
  return '';
}

/** `Comfy.Localhost.:8080` → `comfy.localhost`; `[::1]:80` → `[::1]`. */
export function normalizeHost(value: string): string {
  let h = value.trim();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return (end < 0 ? h : h.slice(0, end + 1)).toLowerCase();
  }
  const colon = h.indexOf(':');
  if (colon >= 0) h = h.slice(0, colon);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h.toLowerCase();
}

/** The door of one service's whole origin. */
export function originDoor(hooks: ProxyHooks, serviceId: string, kind: 'host' | 'port'): Door<IncomingMessage> {
  const authorize = hooks.authorizeOrigin ?? hooks.authorize;
  return {
    kind,
    pick(req: IncomingMessage): ServicePath | null | HestiaError {
      const refused = pickServicePath(req); // the method rule (TRACE/CONNECT)
      if (refused instanceof HestiaError) return refused;
      const url = req.url ?? '';
      if (url.charCodeAt(0) !== 0x2f /* / */)
        return new HestiaError('HESTIA_BAD_REQUEST', 'the request target must be a path starting with /');
      return { id: serviceId, rest: url };
    },
    refuseTarget: refuseEscapingPath,
    authorize: authorize === undefined ? undefined : (req, id) => authorize.call(hooks, req, id ?? serviceId),
    // The service was removed by a reload while its door was still in use.
    unknownService: (_id, known) => unknownServiceError(serviceId, known),
  };
}
