/**
 * WebSocket upgrades (SPEC §4, DESIGN §4): admitted like any proxied request (admission.ts, the
 * `/services/{id}` door: shutting down → lookup → auth → unknown id), then the lease
 * (`acquireLease`: waiting for a start if needed, leaving the queue if the client leaves); not
 * routed (docs/strategies.md); open the upgrade upstream, write the upstream's 101
 * back raw, then splice the two sockets byte for byte. Either side closing or failing destroys
 * both. Hestia does not parse frames: it is a tunnel, so any subprotocol and extension works.
 *
 * Activity (SPEC §4): with `websocket_keeps_alive: true` the lease is held until the tunnel
 * closes (an open socket keeps the service up). Otherwise the lease is released right after
 * the handshake and every chunk in either direction calls `lease.touch()`, so messages count
 * as activity but an idle open socket does not.
 *
 * Connection failures are retried like HTTP requests, by the same attempt-policy.ts
 * (`retry_count`, `retry_delay_ms`, then `fallback_url` once). An upstream that answers the
 * upgrade with anything but 101 has its response relayed, and the connection is closed. The
 * tunnel is reported when it closes (ProxyContext.reportEnd, status 101).
 */
import { randomUUID } from 'node:crypto';
import { type ClientRequest, request as httpRequest, type IncomingMessage, STATUS_CODES } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HestiaError } from '../errors.ts';
import type { Lease, ServiceHandle } from '../services/types.ts';
import { acquireLease, admit, type Door, type DoorKind, type LeaseWaiter, leaveQueue } from './admission.ts';
import { type AttemptState, nextAttempt } from './attempt-policy.ts';
import { classifyFailure, failureCode, failureToError } from './failures.ts';
import { buildUpstreamHeaders, isSessionCookieHeader, isValidRequestId, type UpstreamRequestHead } from './headers.ts';
import type { EndedRequest, ProxyContext } from './proxy-context.ts';
import { joinUpstreamPath, PROXY_ROUTE, SERVICES_PREFIX } from './target-path.ts';
import type { UpstreamTarget } from './upstream-pools.ts';

/** Response headers not relayed on a refused upgrade (we close the connection ourselves). */
const REFUSAL_DROP: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade']);

const EMPTY = Buffer.alloc(0);

function isProxyTarget(url: string | undefined): boolean {
  return url !== undefined && (url === '/services' || url.startsWith(SERVICES_PREFIX));
}

class Tunnel implements AttemptState, LeaseWaiter, EndedRequest {
  requestId: string;
  readonly headers: string[];
  lease: Lease | null = null;
  /** Kept after an early release, for touch(). */
  activity: Lease | null = null;
  target: UpstreamTarget | null = null;
  upstreamReq: ClientRequest | null = null;
  upstreamSocket: Duplex | null = null;
  waitAbort: AbortController | null = null;
  timer: NodeJS.Timeout | null = null;
  attempts = 0;
  onFallback = false;
  /** attempt-policy.ts `AttemptState`: an upgrade request has no body. */
  readonly bodyStarted = false;
  bytesIn = 0;
  bytesOut = 0;
  status = 0;
  errorCode: string | null = null;
  ended = false;
  /** Upgrades are not routed (EndedRequest). */
  readonly routeReason = null;
  /** EndedRequest.door: set from the admitting door. */
  door: DoorKind = 'path';

  /**
   * An admitted upgrade (admission.ts) with its upstream head built (headers.ts); `upstreamHead`
   * null for one refused before that (`Tunnel.refused`). From here on the client socket is the
   * tunnel's: Node removed its own error handler on upgrade.
   */
  constructor(
    readonly pctx: ProxyContext,
    readonly req: IncomingMessage,
    readonly client: Duplex,
    readonly head: Buffer,
    readonly service: ServiceHandle | null,
    readonly rest: string,
    upstreamHead: UpstreamRequestHead | null,
    readonly startedAt: number,
  ) {
    this.requestId = upstreamHead?.requestId ?? '';
    this.headers = upstreamHead?.headers ?? [];
    pctx.tunnels.add(client);
    client.on('error', () => this.finish());
    client.on('close', () => this.finish());
  }

  /** An upgrade refused before anything was acquired: answered with `err`, reported as any other. */
  static refused(
    pctx: ProxyContext,
    req: IncomingMessage,
    client: Duplex,
    service: ServiceHandle | null,
    err: HestiaError,
    startedAt: number,
    door: DoorKind = 'path',
  ): void {
    const t = new Tunnel(pctx, req, client, EMPTY, service, '', null, startedAt);
    t.door = door;
    t.reject(err);
  }

  get method(): string {
    return this.req.method ?? 'GET';
  }

  /** Origin of the upstream tried last (EndedRequest). */
  get upstream(): string | null {
    return this.target?.origin ?? null;
  }

  /** Answer the upgrade request with a Hestia error, raw, and close. */
  reject(err: HestiaError): void {
    if (this.ended) return;
    if (this.requestId === '') {
      const id = this.req.headers['x-request-id'];
      this.requestId = typeof id === 'string' && isValidRequestId(id) ? id : randomUUID();
    }
    this.status = err.status;
    this.errorCode = err.code;
    const body = JSON.stringify(err.toBody());
    let text =
      `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? ''}\r\n` +
      'content-type: application/json; charset=utf-8\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n` +
      'cache-control: no-store\r\n' +
      `x-request-id: ${this.requestId}\r\n` +
      'connection: close\r\n';
    for (const [k, v] of Object.entries(err.headers)) text += `${k}: ${v}\r\n`;
    this.endClient(`${text}\r\n${body}`);
  }

  private endClient(text: string): void {
    const client = this.client;
    if (client.destroyed) return;
    client.end(text);
    // The client may never close its side; once our bytes are flushed, the socket is done.
    client.once('finish', () => client.destroy());
  }

  /** The lease is ours (admission.ts `acquireLease`): open the upgrade upstream. */
  attachLease(lease: Lease): void {
    this.lease = lease;
    try {
      this.target = this.pctx.pools.target(lease.baseUrl);
    } catch {
      this.reject(
        new HestiaError('HESTIA_UPSTREAM_ERROR', `service '${this.service!.id}' has an unusable upstream URL`),
      );
      return;
    }
    this.connect();
  }

  connect(): void {
    this.timer = null;
    if (this.ended) return;
    const target = this.target!;
    const cfg = this.service!.config;
    this.attempts++;
    const send = target.secure ? httpsRequest : httpRequest;
    const upReq = send({
      host: target.hostname,
      port: target.port,
      method: 'GET',
      path: joinUpstreamPath(target.basePath, this.rest),
      // Array headers are written as given: Node adds no Host of its own, so we add the
      // upstream's (same rule as HTTP requests, see headers.ts).
      headers: [...this.headers, 'host', target.host],
      // A WebSocket owns its connection: never from (or back into) a keep-alive pool.
      agent: false,
    });
    this.upstreamReq = upReq;
    upReq.on('upgrade', (res, socket, upHead) => this.onUpgrade(upReq, res, socket, upHead));
    upReq.on('response', (res) => this.onRefused(upReq, res));
    upReq.on('error', (err) => this.onUpstreamError(upReq, err));
    const ms = cfg.upstream_headers_timeout_ms;
    if (ms > 0) this.timer = setTimeout(() => this.onHeadersTimeout(upReq), ms);
    upReq.end();
  }

  private clearTimer(): void {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
    }
  }

  private onHeadersTimeout(upReq: ClientRequest): void {
    this.timer = null;
    if (this.ended || this.upstreamReq !== upReq) return;
    this.upstreamReq = null;
    upReq.destroy();
    const err = { code: 'UND_ERR_HEADERS_TIMEOUT' };
    this.publish('proxy_error', { code: 'HESTIA_UPSTREAM_TIMEOUT', cause: err.code, phase: 'headers' });
    this.reject(failureToError('headers-timeout', err, this.failureContext()));
  }

  private onUpstreamError(upReq: ClientRequest, err: Error): void {
    if (this.ended || this.upstreamReq !== upReq) return;
    this.upstreamReq = null;
    this.clearTimer();
    const kind = classifyFailure(err);
    // Upgrades are not routed (docs/strategies.md): no failover, only retries and the fallback.
    const fallbackUrl = this.lease?.fallbackUrl ?? this.activity?.fallbackUrl ?? null;
    const next = nextAttempt(kind, this, this.service!.config, fallbackUrl, null);
    if (next.action === 'retry') {
      this.publish('proxy_retry', { attempt: this.attempts + 1, cause: failureCode(err) });
      this.timer = setTimeout(() => this.connect(), next.delayMs);
      return;
    }
    if (next.action === 'fallback') {
      this.onFallback = true;
      const from = this.target!.origin;
      const target = this.fallbackTarget(next.url);
      if (target !== null) {
        this.target = target;
        this.publish('proxy_fallback', { from, cause: failureCode(err) });
        this.timer = setTimeout(() => this.connect(), 0);
        return;
      }
    }
    const e = failureToError(kind, err, this.failureContext());
    this.publish('proxy_error', { code: e.code, cause: failureCode(err), phase: 'headers' });
    this.reject(e);
  }

  /** The fallback's target, or null when its URL is unusable (the primary's failure stands). */
  private fallbackTarget(url: string): UpstreamTarget | null {
    try {
      return this.pctx.pools.target(url);
    } catch {
      return null;
    }
  }

  private failureContext() {
    return { serviceId: this.service!.id, attempts: this.attempts, upstream: this.target!.origin };
  }

  /** The upstream answered the upgrade with something else: relay it, then close. */
  private onRefused(upReq: ClientRequest, res: IncomingMessage): void {
    if (this.ended || this.upstreamReq !== upReq) {
      res.destroy();
      return;
    }
    this.upstreamReq = null;
    this.clearTimer();
    this.status = res.statusCode ?? 502;
    let text = `HTTP/1.1 ${this.status} ${res.statusMessage ?? ''}\r\n`;
    const raw = res.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      if (REFUSAL_DROP.has(raw[i]!.toLowerCase()) || isSessionCookieHeader(raw[i]!, raw[i + 1]!)) continue;
      text += `${raw[i]}: ${raw[i + 1]}\r\n`;
    }
    text += `x-request-id: ${this.requestId}\r\nconnection: close\r\n\r\n`;
    const client = this.client;
    client.write(text);
    res.on('data', (chunk: Buffer) => {
      this.bytesOut += chunk.length;
    });
    // Body framing: Content-Length is kept; a chunked body is relayed de-chunked and
    // delimited by closing the connection (we dropped Transfer-Encoding above).
    res.pipe(client);
    res.on('error', () => client.destroy());
    client.once('finish', () => client.destroy());
  }

  private onUpgrade(upReq: ClientRequest, res: IncomingMessage, socket: Duplex, upHead: Buffer): void {
    const client = this.client;
    if (this.ended || this.upstreamReq !== upReq || client.destroyed) {
      socket.destroy();
      return;
    }
    this.upstreamReq = null;
    this.clearTimer();
    this.upstreamSocket = socket;
    this.status = 101;
    let text = `HTTP/1.1 101 ${res.statusMessage || 'Switching Protocols'}\r\n`;
    const raw = res.rawHeaders;
    for (let i = 0; i < raw.length; i += 2)
      if (!isSessionCookieHeader(raw[i]!, raw[i + 1]!)) text += `${raw[i]}: ${raw[i + 1]}\r\n`;
    text += `x-request-id: ${this.requestId}\r\n`;
    if (this.lease!.coldStart) text += `x-hestia-cold-start: ${Math.round(this.lease!.waitedMs)}\r\n`;
    client.write(`${text}\r\n`);
    if (upHead.length > 0) {
      this.bytesOut += upHead.length;
      client.write(upHead);
    }
    if (this.head.length > 0) {
      this.bytesIn += this.head.length;
      socket.write(this.head);
    }

    (client as Socket).setNoDelay?.(true);
    (socket as Socket).setNoDelay?.(true);
    (client as Socket).setTimeout?.(0);

    if (!this.service!.config.websocket_keeps_alive) {
      // Messages still count as activity through touch() (allowed after release).
      this.activity = this.lease;
      this.lease = null;
      this.activity!.release();
    }
    client.on('data', (chunk: Buffer) => {
      this.bytesIn += chunk.length;
      this.activity?.touch();
    });
    socket.on('data', (chunk: Buffer) => {
      this.bytesOut += chunk.length;
      this.activity?.touch();
    });
    socket.on('error', () => this.finish());
    socket.on('close', () => this.finish());
    client.pipe(socket);
    socket.pipe(client);
  }

  publish(type: 'proxy_retry' | 'proxy_fallback' | 'proxy_error', details: Record<string, unknown>): void {
    this.pctx.ctx.bus.publish(type, this.service!.id, {
      requestId: this.requestId,
      upstream: this.target?.origin ?? null,
      attempts: this.attempts,
      websocket: true,
      ...details,
    });
  }

  /** Runs once, when either side closes: tear down both, release, report. */
  finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.clearTimer();
    leaveQueue(this);
    this.upstreamReq?.destroy();
    this.upstreamReq = null;
    this.upstreamSocket?.destroy();
    this.client.destroy();
    this.pctx.tunnels.delete(this.client);
    const lease = this.lease ?? this.activity;
    if (this.lease !== null) {
      this.lease.release();
      this.lease = null;
    }
    this.activity = null;
    if (this.status === 0) {
      this.status = 499;
      this.errorCode ??= 'CLIENT_CLOSED';
    }
    this.pctx.reportEnd(this, PROXY_ROUTE, this.status, lease, true);
  }
}

/** `door` defaults to the `/services/{id}` door; a host or port door passes its own (whole origin). */
export function handleUpgrade(
  pctx: ProxyContext,
  req: IncomingMessage,
  client: Duplex,
  head: Buffer,
  door: Door<IncomingMessage> = pctx.door,
): void {
  const startedAt = performance.now();
  const kind = door.kind ?? 'path';
  let t: Tunnel | null = null;
  try {
    if (door === pctx.door && !isProxyTarget(req.url)) {
      const err = new HestiaError('HESTIA_NOT_FOUND', `no WebSocket endpoint at ${(req.url ?? '').split('?')[0]}`);
      Tunnel.refused(pctx, req, client, null, err, startedAt);
      return;
    }
    const admitted = admit(pctx.ctx, door, req);
    if (admitted.error !== null) {
      Tunnel.refused(pctx, req, client, admitted.service, admitted.error, startedAt, kind);
      return;
    }
    const upgrade = req.headers.upgrade;
    if (req.method !== 'GET' || upgrade === undefined || upgrade.toLowerCase() !== 'websocket') {
      const err = new HestiaError(
        'HESTIA_BAD_REQUEST',
        'only WebSocket upgrades (GET, Upgrade: websocket) are proxied',
      );
      Tunnel.refused(pctx, req, client, admitted.service, err, startedAt, kind);
      return;
    }
    const built = buildUpstreamHeaders(req, pctx.ctx.config.server.trust_proxy, upgrade, admitted.authed);
    t = new Tunnel(pctx, req, client, head, admitted.service, admitted.rest, built, startedAt);
    t.door = kind;
    acquireLease(pctx.ctx.log, admitted.service, t);
  } catch (err) {
    pctx.ctx.log.error({ err, event_type: 'proxy_internal_error' }, 'upgrade failed');
    const internal = new HestiaError('HESTIA_INTERNAL', 'internal error in the gateway');
    if (t !== null) t.reject(internal);
    else Tunnel.refused(pctx, req, client, null, internal, startedAt);
  }
}
