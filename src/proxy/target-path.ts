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

/**
 * True when the path part of `rest` climbs above the service's base with `..` segments. The one
 * path rule of every door: the proxy (`/services/{id}/…`, WebSocket upgrades) and the
 * dispatcher's `path` field (server/dispatch-validation.ts) call this.
 *
 * Checked on a decoded copy (the forwarded path stays raw): percent-decoding is repeated until
 * stable (bounded), so `%2e%2e` and double-encoded `%252e%252e` count as `..`; `/`, `\`, `%2f`
 * and `%5c` are separators; a segment's `;param` is ignored (`..;jsessionid=x` is `..` to
 * servers that strip path parameters: Tomcat, Jetty). Upstream frameworks differ in what they
 * decode before routing, and we would rather refuse an odd-but-harmless path than let one
 * escape. `..` that stays inside the base (`a/../b`) is allowed and forwarded as sent.
 */
export function escapesBase(rest: string): boolean {
  const q = rest.indexOf('?');
  let path = q === -1 ? rest : rest.slice(0, q);
  // Fast path: without a dot or a percent sign there can be no dot segment.
  if (path.indexOf('.') === -1 && path.indexOf('%') === -1) return false;
  if (path.indexOf('%') !== -1) path = decodeFully(path);
  return segmentsClimbAbove(withoutParams(path.split(SEPARATOR)));
}

const SEPARATOR = /[/\\]/;
const PERCENT_ESCAPE = /%([0-9A-Fa-f]{2})/g;

/** Percent-decode until stable (at most 5 rounds), tolerant: a malformed `%zz` stays as it is. */
function decodeFully(s: string): string {
  let cur = s;
  for (let i = 0; i < 5; i++) {
    const next = cur.replace(PERCENT_ESCAPE, (_m, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
    if (next === cur) return cur;
    cur = next;
  }
  return cur;
}

function* withoutParams(segments: readonly string[]): Generator<string> {
  for (const seg of segments) {
    const semi = seg.indexOf(';');
    yield semi === -1 ? seg : seg.slice(0, semi);
  }
}

/**
 * True when walking these path segments from the base goes above it: each `..` climbs one
 * level, `.` and empty segments stay, anything else descends.
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
