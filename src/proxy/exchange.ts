/**
 * One proxied HTTP request, from arrival to the end of its response: its state, its lease, its
 * upstream attempts, and the undici dispatch handler that streams the response to the client.
 *
 * ## Ending, and the lease (the one rule that must never break)
 * Every exchange ends exactly once, in `finish()`, which runs from the response's 'close'
 * event. Node emits 'close' on a ServerResponse in every case: after a normal finish, after
 * we destroyed it (upstream failed mid-stream), or when the client disconnected. So nothing
 * else ever releases the lease: code paths only end or destroy `res`, and `finish()` releases,
 * aborts whatever is still running upstream, clears timers and writes the one log line. A lease
 * that arrives after the exchange ended (the client left while queued) is released on arrival.
 *
 * ## Why a dispatch handler and not `request()` + `.pipe()`
 * undici's `request()` wraps the same handler interface with a Promise/callback, a
 * BodyReadable stream and a parsed header object, and can only be cancelled before the
 * response through an AbortSignal (an AbortController per request, which DESIGN §4 measured at
 * +50% CPU). As the dispatch handler, the exchange gets the upstream `abort` function in
 * `onConnect` (cancellation for free), raw header buffers to filter in one pass, and writes each
 * body chunk straight into `res` with the same backpressure contract `.pipe()` implements:
 * `res.write()` returning false pauses the upstream socket, 'drain' resumes it. We implement
 * the legacy (onConnect/onHeaders/onData) interface on purpose: it is what undici 7 core calls;
 * the newer controller interface is adapted onto it with an extra object and a header parse per
 * request (lib/handler/unwrap-handler.js).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { HestiaError, sendError } from '../errors.ts';
import type { Lease, ServiceHandle } from '../services/types.ts';
import type { ProxyCore, ProxyRequestInfo } from './core.ts';
import { classifyFailure, type FailureKind, failureCode, failureToError, isRetriable } from './failures.ts';
import { buildResponseHeaders, isValidRequestId } from './headers.ts';
import { type BodyOwner, RequestBodySource } from './request-body.ts';
import { joinUpstreamPath, PROXY_ROUTE } from './target-path.ts';
import type { UpstreamTarget } from './upstream-pools.ts';
import { sendWaitingPage } from './waiting-page.ts';

const kExchange = Symbol('hestia.exchange');
type ExchangeResponse = ServerResponse & { [kExchange]?: Exchange };

/** Shared listeners: `this` is the response, the exchange hangs off it (no closure per request). */
function onResClose(this: ExchangeResponse): void {
  this[kExchange]?.finish();
}
function onResDrain(this: ExchangeResponse): void {
  this[kExchange]?.resumeUpstream?.();
}
function retryNow(ex: Exchange): void {
  ex.retryTimer = null;
  ex.dispatchAttempt();
}

/** The incoming X-Request-ID if valid (used only on error paths before headers were built). */
function incomingRequestId(req: IncomingMessage): string | undefined {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'x-request-id' && isValidRequestId(raw[i + 1]!)) return raw[i + 1];
  }
  return undefined;
}

export class Exchange implements Dispatcher.DispatchHandler, BodyOwner {
  readonly startedAt = performance.now();
  requestId = '';
  service: ServiceHandle | null = null;
  /** Upstream request headers (flat list), built once and reused by every attempt. */
  headers: string[] = [];
  hasBody = false;
  /** The raw part of the target after `/services/{id}`. */
  rest = '';
  bytesIn = 0;
  bytesOut = 0;
  retryTimer: NodeJS.Timeout | null = null;
  resumeUpstream: (() => void) | null = null;

  private lease: Lease | null = null;
  private ended = false;
  private attempts = 0;
  private onFallback = false;
  private target: UpstreamTarget | null = null;
  private abortUpstream: ((err?: Error) => void) | null = null;
  private drainHooked = false;
  private waitAbort: AbortController | null = null;
  private errorCode: string | null = null;

  constructor(
    private readonly core: ProxyCore,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {
    (res as ExchangeResponse)[kExchange] = this;
    res.on('close', onResClose);
  }

  // ---------------------------------------------------------------------------------------
  // Before forwarding
  // ---------------------------------------------------------------------------------------

  /** Answer with a Hestia error (nothing was forwarded). */
  reject(err: HestiaError): void {
    if (this.ended) return;
    if (this.requestId === '') this.requestId = incomingRequestId(this.req) ?? randomUUID();
    this.errorCode = err.code;
    const res = this.res;
    if (res.headersSent) {
      // Too late for an error response (only a collaborator bug gets here).
      res.destroy();
      return;
    }
    res.setHeader('x-request-id', this.requestId);
    if (err.code === 'HESTIA_SHUTTING_DOWN') res.shouldKeepAlive = false;
    sendError(res, err);
  }

  /** The service is not hot and the client is a browser: the waiting page, at once. */
  waitingPage(): void {
    sendWaitingPage(this.res, this.service!.id, this.requestId);
  }

  /** Slow path: wait in the service's queue; leave it if the client goes away. */
  waitForLease(svc: ServiceHandle): void {
    // The only AbortController in the proxy: created for queued requests, never on the hot path.
    const ac = new AbortController();
    this.waitAbort = ac;
    svc
      .acquire({ signal: ac.signal })
      .then(
        (lease) => {
          this.waitAbort = null;
          this.attachLease(lease);
        },
        (err: unknown) => {
          this.waitAbort = null;
          if (this.ended) return;
          if (err instanceof HestiaError) this.reject(err);
          else throw err;
        },
      )
      .catch((err: unknown) => {
        this.core.ctx.log.error({ err, service_id: svc.id, request_id: this.requestId }, 'acquire failed');
        this.reject(new HestiaError('HESTIA_INTERNAL', 'internal error while waiting for the service'));
      });
  }

  /** The lease is ours: forward. The single place a lease enters an exchange. */
  attachLease(lease: Lease): void {
    if (this.ended) {
      lease.release();
      return;
    }
    this.lease = lease;
    this.useTarget(lease.baseUrl);
    if (this.target !== null) this.dispatchAttempt();
  }

  private useTarget(baseUrl: string): void {
    try {
      this.target = this.core.pools.target(baseUrl);
    } catch (err) {
      this.target = null;
      this.reject(
        new HestiaError('HESTIA_UPSTREAM_ERROR', `service '${this.service!.id}' has an unusable upstream URL`, {
          serviceId: this.service!.id,
          cause: failureCode(err),
        }),
      );
    }
  }

  // ---------------------------------------------------------------------------------------
  // Forwarding (undici dispatch handler)
  // ---------------------------------------------------------------------------------------

  dispatchAttempt(): void {
    if (this.ended) return;
    const target = this.target!;
    const cfg = this.service!.config;
    this.attempts++;
    target.pool.dispatch(
      {
        path: joinUpstreamPath(target.basePath, this.rest),
        method: this.req.method as Dispatcher.HttpMethod,
        headers: this.headers,
        body: this.hasBody ? new RequestBodySource(this.req, this) : null,
        headersTimeout: cfg.upstream_headers_timeout_ms,
        bodyTimeout: cfg.upstream_body_timeout_ms,
      },
      this,
    );
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.ended) abort();
    else this.abortUpstream = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx: Node already answered `100 Continue` to the client; 103 Early Hints are not relayed.
    if (statusCode < 200) return true;
    if (this.ended) return false;
    this.resumeUpstream = resume;
    const head = buildResponseHeaders(rawHeaders);
    const h = head.headers;
    h.push('x-request-id', this.requestId);
    const lease = this.lease!;
    if (lease.coldStart) h.push('x-hestia-cold-start', String(Math.round(lease.waitedMs)));
    if (statusText !== '') this.res.writeHead(statusCode, statusText, h);
    else this.res.writeHead(statusCode, h);
    // An event stream's headers must reach the client before its first event, which may be
    // minutes away; other responses go out with their first body chunk.
    if (head.eventStream) this.res.flushHeaders();
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytesOut += chunk.length;
    if (this.res.write(chunk)) return true;
    if (!this.drainHooked) {
      this.drainHooked = true;
      this.res.on('drain', onResDrain);
    }
    return false;
  }

  onComplete(): void {
    this.abortUpstream = null;
    if (!this.ended) this.res.end();
  }

  onError(err: Error): void {
    this.abortUpstream = null;
    if (this.ended) return; // we aborted because the client left
    const kind = classifyFailure(err);
    const target = this.target!;
    if (this.res.headersSent) {
      // Too late for an error response: cut the client connection so it sees a truncated
      // response, never a silently complete one.
      this.errorCode = kind === 'body-timeout' ? 'HESTIA_UPSTREAM_TIMEOUT' : 'HESTIA_UPSTREAM_ERROR';
      this.publish('proxy_error', { code: this.errorCode, cause: failureCode(err), phase: 'body' });
      this.res.destroy();
      return;
    }
    if (isRetriable(kind, this.bytesIn > 0)) {
      const svc = this.service!;
      const lease = this.lease!;
      if (!this.onFallback && this.attempts < Math.max(1, svc.config.retry_count)) {
        this.publish('proxy_retry', { attempt: this.attempts + 1, cause: failureCode(err) });
        this.retryTimer = setTimeout(retryNow, svc.config.retry_delay_ms, this);
        return;
      }
      if (!this.onFallback && lease.fallbackUrl !== null) {
        this.onFallback = true;
        this.useTarget(lease.fallbackUrl);
        if (this.target === null) return;
        this.publish('proxy_fallback', { from: target.origin, cause: failureCode(err) });
        // Next turn of the event loop: not from inside undici's error callback.
        this.retryTimer = setTimeout(retryNow, 0, this);
        return;
      }
    }
    this.fail(kind, err);
  }

  private fail(kind: FailureKind, err: unknown): void {
    const e = failureToError(kind, err, {
      serviceId: this.service!.id,
      attempts: this.attempts,
      upstream: this.target!.origin,
    });
    this.publish('proxy_error', { code: e.code, cause: failureCode(err), phase: 'headers' });
    this.reject(e);
  }

  private publish(type: 'proxy_retry' | 'proxy_fallback' | 'proxy_error', details: Record<string, unknown>): void {
    this.core.ctx.bus.publish(type, this.service!.id, {
      requestId: this.requestId,
      upstream: this.target?.origin ?? null,
      attempts: this.attempts,
      ...details,
    });
  }

  // ---------------------------------------------------------------------------------------
  // The end
  // ---------------------------------------------------------------------------------------

  /** Runs once, from the response's 'close' (see the module comment). */
  finish(): void {
    if (this.ended) return;
    this.ended = true;
    const res = this.res;
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    if (this.waitAbort !== null) this.waitAbort.abort();
    if (this.abortUpstream !== null) {
      const abort = this.abortUpstream;
      this.abortUpstream = null;
      abort();
    }
    const lease = this.lease;
    this.lease = null;
    if (lease !== null) lease.release();

    let status = res.statusCode;
    if (!res.headersSent) {
      status = 499;
      this.errorCode ??= 'CLIENT_CLOSED';
    } else if (!res.writableFinished) this.errorCode ??= 'CLIENT_CLOSED';

    const info: ProxyRequestInfo = {
      request_id: this.requestId,
      service_id: this.service?.id ?? null,
      method: this.req.method ?? '',
      route: PROXY_ROUTE,
      status,
      duration_ms: Math.round((performance.now() - this.startedAt) * 1000) / 1000,
      bytes_in: this.bytesIn,
      bytes_out: this.bytesOut,
      cold_start_ms: lease?.coldStart ? Math.round(lease.waitedMs) : null,
      upstream: this.target?.origin ?? null,
      error: this.errorCode,
      websocket: false,
    };
    this.core.report(info);
  }
}
