/**
 * What the node:http server itself must get right before any door sees a request (SPEC §8,
 * "Hardening"), for every listener Hestia opens:
 *
 * - **Envelope everywhere.** Errors node:http answers on its own (parser errors 400, header
 *   overflow 431, the headers timeout 408) go through `clientError` and are written here as the
 *   JSON envelope; a missing Host (HTTP/1.1) and two Host headers are refused here with a 400
 *   envelope (node:http's own missing-Host answer is an empty 400, so `requireHostHeader` is off).
 * - **Idle timeouts only.** `requestTimeout` is 0: an upload may take as long as it keeps
 *   moving (a GiB on a slow link). The headers must arrive within `headersTimeout`, and a request
 *   whose body stops arriving for `server.request_idle_timeout_ms` gets 408 and the connection
 *   is closed. The socket idle timer also runs while a request waits for its answer (a cold
 *   start, a long generation): that wait is the proxy's business (start/queue/upstream
 *   timeouts), so the timer is ignored then. Between requests, `keepAliveTimeout` applies.
 * - **Upgrades other than WebSocket** (`Upgrade: h2c` from `curl --http2`, Java's HttpClient)
 *   are ignored: the request is served as plain HTTP/1.1 on the same connection.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { HestiaError } from '../errors.ts';

/** node:http's own default; the request line and headers must arrive within it. */
export const HEADERS_TIMEOUT_MS = 60_000;

/** createServer options every Hestia listener uses (see the module comment). */
export const SERVER_OPTIONS = {
  keepAliveTimeout: 65_000,
  requestTimeout: 0,
  headersTimeout: HEADERS_TIMEOUT_MS,
  requireHostHeader: false,
} as const;

/**
 * Install the hardening on a node:http server: idle timeout and `clientError` answers. Call it
 * once per listener, with the listener's upgrade handling done by `routeUpgrade`.
 */
export function hardenServer(server: Server, requestIdleTimeoutMs: number): void {
  server.requestTimeout = 0;
  server.timeout = requestIdleTimeoutMs;
  server.on('clientError', answerClientError);
}

/** What `clientError` reports, by code: status, Hestia code, sentence. */
const CLIENT_ERRORS: Record<string, [HestiaError['code'], string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: ['HESTIA_REQUEST_TIMEOUT', 'the request headers did not arrive in time'],
  HPE_HEADER_OVERFLOW: ['HESTIA_HEADERS_TOO_LARGE', 'the request line and headers are too large'],
  HPE_URI_TOO_LONG: ['HESTIA_URI_TOO_LONG', 'the request target is too long'],
};

interface ClientSocket extends Duplex {
  /** node:http's response on this connection, if one has started (what its own handler checks). */
  _httpMessage?: { headersSent?: boolean } | null;
}

/** node:http's `clientError`: answer with the envelope when nothing was written yet, then close. */
export function answerClientError(err: Error & { code?: string }, socket: ClientSocket): void {
  if (err.code === 'ECONNRESET' || !socket.writable || socket._httpMessage?.headersSent === true) {
    socket.destroy();
    return;
  }
  const [code, message] = CLIENT_ERRORS[err.code ?? ''] ?? [
    'HESTIA_BAD_REQUEST',
    'the request could not be parsed as HTTP/1.1',
  ];
  socket.end(rawErrorResponse(new HestiaError(code, message)));
}

/** A whole HTTP/1.1 error response as bytes, `Connection: close` (for sockets without a ServerResponse). */
export function rawErrorResponse(err: HestiaError): string {
  const body = JSON.stringify(err.toBody());
  let head = `HTTP/1.1 ${err.status} ${STATUS_TEXT[err.status] ?? 'Error'}\r\n`;
  head += 'content-type: application/json; charset=utf-8\r\ncache-control: no-store\r\n';
  for (const [k, v] of Object.entries(err.headers)) head += `${k}: ${v}\r\n`;
  return `${head}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  414: 'URI Too Long',
  431: 'Request Header Fields Too Large',
};

/**
 * The request head's own problems, refused before any door: no Host on HTTP/1.1, or two Host
 * headers (which one would the upstream, a log line or a host allow-list believe?). One pass over
 * the raw names, comparing only those of length 4.
 */
export function malformedHead(req: IncomingMessage): HestiaError | null {
  const raw = req.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') hosts++;
  }
  if (hosts > 1) return new HestiaError('HESTIA_BAD_REQUEST', 'the request has more than one Host header');
  if (hosts === 0 && req.httpVersionMajor === 1 && req.httpVersionMinor === 1)
    return new HestiaError('HESTIA_BAD_REQUEST', 'an HTTP/1.1 request must have a Host header');
  return null;
}

/**
 * Every request's entry: refuse a malformed head (true: answered, the connection will close),
 * else arm the body idle timeout (see the module comment).
 */
export function refuseMalformed(req: IncomingMessage, res: ServerResponse): boolean {
  res.on('timeout', onSocketIdle);
  const bad = malformedHead(req);
  if (bad === null) return false;
  res.shouldKeepAlive = false;
  res.setHeader('connection', 'close');
  const payload = JSON.stringify(bad.toBody());
  res.writeHead(bad.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(payload),
    'cache-control': 'no-store',
  });
  res.end(payload);
  // The body, if any, is not read: close once the answer is out.
  req.resume();
  return true;
}

/**
 * The socket was idle for `server.request_idle_timeout_ms` while this response was current.
 * Still receiving the body: 408 (when nothing was answered yet) and close. Otherwise the request
 * is waiting for its answer: keep it (a listener here stops node:http destroying the socket).
 */
function onSocketIdle(this: ServerResponse): void {
  const req = this.req;
  if (req.complete) return;
  const err = new HestiaError('HESTIA_REQUEST_TIMEOUT', 'the request body stopped arriving (idle timeout)');
  if (!this.headersSent) {
    const payload = JSON.stringify(err.toBody());
    this.shouldKeepAlive = false;
    this.writeHead(err.status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(payload),
      'cache-control': 'no-store',
      connection: 'close',
    });
    this.end(payload);
    this.once('finish', () => req.socket.destroy());
  } else req.socket.destroy();
}

/** `Upgrade: websocket` (any case, possibly in a list): the only upgrade Hestia takes. */
export function isWebSocketUpgrade(req: IncomingMessage): boolean {
  const v = req.headers.upgrade;
  if (v === undefined) return false;
  for (const t of v.split(',')) if (t.trim().toLowerCase() === 'websocket') return true;
  return false;
}

/**
 * Serve a non-WebSocket upgrade request (h2c) as plain HTTP/1.1: node:http already handed the
 * connection over, so its head is written back without Upgrade, HTTP2-Settings and their
 * Connection tokens (values as the parser accepted them), put in front of the bytes that
 * followed, and the connection is given back to the server, which parses it again from there.
 */
export function serveAsPlainHttp(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  let text = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'upgrade' || lower === 'http2-settings') continue;
    let value = raw[i + 1]!;
    if (lower === 'connection') {
      value = value
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== '' && !/^(upgrade|http2-settings)$/i.test(t))
        .join(', ');
      if (value === '') continue;
    }
    text += `${name}: ${value}\r\n`;
  }
  if (head.length > 0) socket.unshift(head);
  socket.unshift(Buffer.from(`${text}\r\n`, 'latin1'));
  server.emit('connection', socket);
}

/**
 * JSON request bodies nested deeper than this are refused with 400 before they are parsed: the
 * parse and everything that walks the value afterwards (validation, serialising a dispatched
 * body) recurse, and a 1M-deep body would otherwise end in a stack overflow (a 500).
 */
export const MAX_JSON_DEPTH = 256;

/** True when `text` (JSON) opens more than `max` arrays/objects inside each other. One pass. */
export function jsonTooDeep(text: string, max = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
  }
  return false;
}
