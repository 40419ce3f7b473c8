/**
 * Where a `/services/{id}…` request goes, computed on the raw request target with plain string
 * operations. The WHATWG URL parser is deliberately not used on the request path: it would
 * normalise what a transparent proxy must forward untouched (`a%2Fb`, dot segments, the exact
 * query string), and it costs a parse per request.
 */

export const SERVICES_PREFIX = '/services/';

/** The normalised route label for logs and metrics; never the raw path. */
export const PROXY_ROUTE = '/services/{id}';

export interface ServicePath {
  /** The service id, percent-decoded. */
  readonly id: string;
  /** What follows the id, raw: '' | '/…' | '?…'. */
  readonly rest: string;
}

/**
 * Split `/services/{id}{rest}`. Returns null when there is no id (`/services`, `/services/`,
 * `/services//x`) or the id's percent-encoding is malformed (no configured id can match it).
 */
export function splitServicePath(url: string): ServicePath | null {
  const start = SERVICES_PREFIX.length;
  if (url.length <= start || !url.startsWith(SERVICES_PREFIX)) return null;
  let end = start;
  while (end < url.length) {
    const c = url.charCodeAt(end);
    if (c === 0x2f /* / */ || c === 0x3f /* ? */) break;
    end++;
  }
  if (end === start) return null;
  let id = url.slice(start, end);
  if (id.includes('%')) {
    try {
      id = decodeURIComponent(id);
    } catch {
      return null;
    }
  }
  return { id, rest: url.slice(end) };
}

/**
 * The path of a base URL, without a trailing slash: `http://h:1` → '', `http://h:1/api/` → '/api'.
 * The base's own query string, if any, is ignored (a base URL names a place, not a request).
 */
export function basePathOf(url: URL): string {
  const p = url.pathname;
  return p.endsWith('/') ? p.slice(0, -1) : p;
}

/**
 * Join a base path ('' or '/api') and the raw rest of the client's target. `/services/x` and
 * `/services/x/` both reach the upstream root (`/` or `/api/`); everything else is appended
 * byte for byte, query string included.
 */
export function joinUpstreamPath(basePath: string, rest: string): string {
  if (rest === '') return basePath + '/';
  if (rest.charCodeAt(0) === 0x3f /* ? */) return basePath + '/' + rest;
  return basePath + rest;
}

const ENCODED_SEPARATOR = /%2e|%2f|%5c/gi;

/**
 * True when the path part of `rest` climbs above the service's base with `..` segments.
 *
 * Checked on a decoded copy (the forwarded path stays raw): `%2e` counts as `.`, and `%2f`,
 * `%5c` and `\` count as separators, because upstream frameworks differ in what they decode
 * before routing and we would rather refuse an odd-but-harmless path than let one escape.
 * `..` that stays inside the base (`a/../b`) is allowed and forwarded as sent.
 */
export function escapesBase(rest: string): boolean {
  const q = rest.indexOf('?');
  let path = q === -1 ? rest : rest.slice(0, q);
  // Fast path: without a dot or a percent sign there can be no dot segment.
  if (path.indexOf('.') === -1 && path.indexOf('%') === -1) return false;
  if (path.indexOf('%') !== -1) {
    path = path.replace(ENCODED_SEPARATOR, (m) => (m.charAt(2) === 'e' || m.charAt(2) === 'E' ? '.' : '/'));
  }
  return segmentsClimbAbove(path.replaceAll('\\', '/').split('/'));
}

/**
 * True when walking these path segments from the base goes above it: each `..` climbs one
 * level, `.` and empty segments stay, anything else descends. Shared by the proxy and the
 * dispatcher, which decode differently before splitting but climb the same way.
 */
export function segmentsClimbAbove(segments: Iterable<string>): boolean {
  let depth = 0;
  for (const seg of segments) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      depth--;
      if (depth < 0) return true;
    } else depth++;
  }
  return false;
}
