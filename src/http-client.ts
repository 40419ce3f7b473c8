/**
 * The parts of undici Hestia uses — Pool, Client and the `request()` helper — loaded from
 * undici's own modules instead of its index.js.
 *
 * Why: `import … from 'undici'` runs index.js, which loads undici's whole web stack (fetch,
 * WebSocket, cookies, caches, mocks); its WebIDL module reads the global `File`, which makes
 * Node load its *own* bundled copy of undici as well. Hestia uses none of that: measured on
 * Node 20, `require('undici')` costs 60 MiB RSS and 7.4 MiB of heap against 51 MiB and 4.3 MiB
 * for the dispatcher modules alone (bare node: 40 MiB), on every gateway, for the whole life of
 * the process. The dispatchers, the request API and the global dispatcher are the very same
 * modules index.js loads (undici has no `exports` map, so these paths are public to Node), and
 * the types are undici's own.
 */
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

const require = createRequire(import.meta.url);

// What index.js does to give every dispatcher `.request()`, `.stream()`, …
const DispatcherBase = require('undici/lib/dispatcher/dispatcher.js') as { prototype: object };
Object.assign(DispatcherBase.prototype, require('undici/lib/api/index.js') as object);

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
export const Client = require('undici/lib/dispatcher/client.js') as typeof Undici.Client;
export type Pool = Undici.Pool;
export type Client = Undici.Client;

const { getGlobalDispatcher } = require('undici/lib/global.js') as { getGlobalDispatcher(): Undici.Dispatcher };

type RequestOptions = Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> &
  Partial<Pick<Undici.Dispatcher.RequestOptions, 'method'>> & { dispatcher?: Undici.Dispatcher };

/**
 * undici's top-level `request(url, options)`: one request through the global dispatcher (or
 * `options.dispatcher`), `GET` unless a method is given. Same semantics as index.js's helper for
 * the way Hestia calls it (an absolute URL, no `path` option).
 */
export function request(url: string | URL, opts: RequestOptions = {}): Promise<Undici.Dispatcher.ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const { dispatcher = getGlobalDispatcher(), ...rest } = opts;
  return dispatcher.request({
    ...rest,
    origin: u.origin,
    path: u.search ? `${u.pathname}${u.search}` : u.pathname,
    method: rest.method ?? (rest.body ? 'PUT' : 'GET'),
  });
}
