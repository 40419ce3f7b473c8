/**
 * One proxied HTTP request, from admission to the end of its response: constructed by
 * handler.ts once admission.ts admitted it (or refused it: `Exchange.refused`), it holds its
 * state and its lease (admission.ts `acquireLease` hands it over), the routing seam, and the
 * response half of the undici dispatch handler, which streams the response to the client.
 * Attempts go through forward.ts (shared with the dispatcher) and attempt-policy.ts.
 *
 * ## Ending, and the lease (the one rule that must never break)
 * Every exchange ends exactly once, in `finish()`, which runs from the response's 'close'
 * event. Node emits 'close' on a ServerResponse in every case: after a normal finish, after
 * we destroyed it (upstream failed mid-stream), or when the client disconnected. So nothing
 * else ever releases the lease: code paths only end or destroy `res`, and `finish()` releases,
 * aborts whatever is still running upstream, leaves the service's queue, clears timers and
 * reports (the one log line). A lease that arrives after the exchange ended (the client left
 * while queued) is released on arrival by admission.ts.
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
import { Readable } from 'node:stream';
import { HestiaError, sendError } from '../errors.ts';
import { routeRequest } from '../routing/route-request.ts';
import type { Lease, ServiceHandle } from '../services/types.ts';
import { type DoorKind, type LeaseWaiter, leaveQueue } from './admission.ts';
import type { FailureKind } from './failures.ts';
import { Forwarding } from './forward.ts';
import { buildResponseHeaders, isValidRequestId, type UpstreamRequestHead } from './headers.ts';
import type { EndedRequest, ProxyContext } from './proxy-context.ts';
import { PROXY_ROUTE } from './target-path.ts';
import { sendWaitingPage, wantsWaitingPage } from './waiting-page.ts';

const kExchange = Symbol('hestia.exchange');
type ExchangeResponse = ServerResponse & { [kExchange]?: Exchange };

/** Shared listeners: `this` is the response, the exchange hangs off it (no closure per request). */
function onResClose(this: ExchangeResponse): void {
  this[kExchange]?.finish();
}
function onResDrain(this: ExchangeResponse): void {
  this[kExchange]?.resumeBody();
}

/** The incoming X-Request-ID if valid (used only on error paths before headers were built). */
function incomingRequestId(req: IncomingMessage): string | undefined {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'x-request-id' && isValidRequestId(raw[i + 1]!)) return raw[i + 1];
  }
  return undefined;
}

export class Exchange extends Forwarding implements LeaseWaiter, EndedRequest {
  waitAbort: AbortController | null = null;
  private drainHooked = false;
  /** The route in the log line and metrics: `/services/{id}`, or the model endpoint's path (model-door.ts). */
  route: string = PROXY_ROUTE;
  /** The body of Hestia's own errors: the envelope, or OpenAI's shape on the model endpoints. */
  errorShape: ((err: HestiaError) => unknown) | undefined = undefined;
  /** EndedRequest.door: set by the handler from the admitting door. */
  door: DoorKind = 'path';

  /**
   * An admitted request (admission.ts), with its upstream head already built (headers.ts); the
   * handler then acquires its lease (`acquireLease`). A refused one: `Exchange.refused`.
   */
  constructor(
    pctx: ProxyContext,
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    service: ServiceHandle | null,
    rest: string,
    head: UpstreamRequestHead | null,
    /** performance.now() when the request arrived, before admission. */
    readonly startedAt: number,
  ) {
    super(pctx, service, req.method ?? '', rest, head, head?.hasBody === true ? req : null);
    (res as ExchangeResponse)[kExchange] = this;
    res.on('close', onResClose);
  }

  /** A request refused by admission (or a gateway bug): answered with `err`, reported as any other. */
  static refused(
    pctx: ProxyContext,
    req: IncomingMessage,
    res: ServerResponse,
    service: ServiceHandle | null,
    err: HestiaError,
    startedAt: number,
    door: DoorKind = 'path',
  ): void {
    const ex = new Exchange(pctx, req, res, service, '', null, startedAt);
    ex.door = door;
    ex.reject(err);
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
    sendError(res, err, this.errorShape);
  }

  /** LeaseWaiter.answerCold: a browser asking a service that is not hot gets the waiting page, at once. */
  answerCold(service: ServiceHandle): boolean {
    if (!service.config.waiting_page || service.state === 'hot' || !wantsWaitingPage(this.req)) return false;
    service.start('waiting_page', { byRequest: true });
    sendWaitingPage(this.res, service.id, this.requestId, this.door !== 'path');
    return true;
  }

  /** The lease is ours (admission.ts `acquireLease`): route, then forward. */
  attachLease(lease: Lease): void {
    const id = this.service!.id;
    // A service without a strategy pays this one Map lookup and nothing else.
    if (this.pctx.ctx.routing.routerFor(id) === null) {
      this.startForwarding(lease, null);
      return;
    }
    // Held from here on, so finish() releases it even while the body is read for routing.
    this.lease = lease;
    const rest = this.rest;
    routeRequest(this.pctx.ctx.routing, id, lease.baseUrl, {
      method: this.method,
      path: rest === '' || rest.charCodeAt(0) === 0x3f /* ? */ ? `/${rest}` : rest,
      headers: this.req.headers,
      // The model door already read the body for the model: the strategy reads those bytes.
      body: this.body === null ? this.req : Buffer.isBuffer(this.body) ? Readable.from([this.body]) : this.body,
    })
      .then(
        (routed) => {
          if (this.ended) return; // the client left while its body was read: finish() released
          if (routed !== null) {
            this.routeReason = routed.decision.reason;
            const body = routed.body;
            if (body !== undefined) {
              this.body = body;
              // A fully read body: its bytes came in already (and it can be replayed on retry).
              if (Buffer.isBuffer(body)) this.bytesIn = body.length;
            }
          }
          this.startForwarding(lease, routed);
        },
        (err: unknown) => {
          if (this.ended) return;
          if (err instanceof HestiaError) this.reject(err);
          else {
            // The client's body failed while it was read: the client is gone. Destroying the
            // response runs finish(), which releases the lease and logs the request.
            this.errorCode = 'CLIENT_CLOSED';
            this.res.destroy();
          }
        },
      )
      .catch((err: unknown) => {
        this.pctx.ctx.log.error({ err, service_id: id, request_id: this.requestId }, 'routing failed');
        this.reject(new HestiaError('HESTIA_INTERNAL', 'internal error while routing the request'));
      });
  }

  // ---------------------------------------------------------------------------------------
  // The response (undici dispatch handler; attempts and failures are in forward.ts)
  // ---------------------------------------------------------------------------------------

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx: Node already answered `100 Continue` to the client; 103 Early Hints are not relayed.
    if (statusCode < 200) return true;
    if (this.ended) return false;
    this.upstreamAnswered(resume);
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
    // undici hands over an empty chunk when a body part ends exactly at the end of a socket
    // read (every 64 KiB response from nginx): written, it costs a write(fd, NULL, 0) syscall.
    if (chunk.length === 0) return true;
    this.bytesOut += chunk.length;
    this.bodyProgress();
    if (this.res.write(chunk)) return true;
    this.bodyPaused();
    if (!this.drainHooked) {
      this.drainHooked = true;
      this.res.on('drain', onResDrain);
    }
    return false;
  }

  onComplete(): void {
    this.upstreamComplete();
    if (!this.ended) this.res.end();
  }

  protected responseStarted(): boolean {
    return this.res.headersSent;
  }

  /** Too late for an error response: cut the client connection so it sees a truncated response. */
  protected abortResponse(_kind: FailureKind, _err: Error): void {
    this.res.destroy();
  }

  // ---------------------------------------------------------------------------------------
  // The end
  // ---------------------------------------------------------------------------------------

  /** Runs once, from the response's 'close' (see the module comment). */
  finish(): void {
    if (this.ended) return;
    this.ended = true;
    const res = this.res;
    leaveQueue(this);
    this.stopUpstream();
    const lease = this.lease;
    this.lease = null;
    if (lease !== null) lease.release();

    let status = res.statusCode;
    if (!res.headersSent) {
      status = 499;
      this.errorCode ??= 'CLIENT_CLOSED';
    } else if (!res.writableFinished) this.errorCode ??= 'CLIENT_CLOSED';

    this.pctx.reportEnd(this, this.route, status, lease, false);
  }
}
