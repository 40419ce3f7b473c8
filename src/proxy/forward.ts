/**
 * Forwarding one request upstream: the attempts, retries, routing failover and fallback, and
 * the undici dispatch handler's connect/error half. Shared by the proxy's `Exchange` (which
 * streams the response to the client's socket) and the dispatcher's `CollectedForward` (which
 * hands the response back as a stream to be collected), so `/services/…` and `POST /v1/requests`
 * have one HTTP client path: same pools, header rules, timeouts, retry and fallback rules.
 *
 * A subclass is constructed with everything the request needs (service, method, target below
 * the service, upstream head, body) and owns the response side: `onHeaders`/`onData`/
 * `onComplete` (calling `upstreamAnswered` first), `reject` (a Hestia error before any
 * response), `responseStarted` and `abortResponse` (an upstream failure after the response
 * began), and the lease's release. (Forwarding stays a base class rather than a component
 * holding a "response sink": as one object it is the undici handler, the deadline entry and the
 * body owner at once, so the proxy's hot path allocates one object per request, not two.)
 *
 * ## Attempts (SPEC §4, docs/strategies.md)
 * After a failed attempt, attempt-policy.ts decides (the same decision as WebSocket tunnels):
 * retry a connection failure up to `retry_count` attempts `retry_delay_ms` apart, then
 * `fallback_url` once, then answer with a 502/504 (failures.ts). With a routing strategy the
 * failed instance is first reported (it cools down) and the strategy asked again (`reroute`,
 * this class's side of the policy's `Failover`): an instance this request has not tried yet is
 * tried at once and does not count against `retry_count` (nginx's `proxy_next_upstream`),
 * bounded by the number of configured instances; when the strategy has nothing left
 * (HESTIA_NO_HEALTHY_INSTANCE) the fallback, if any, is tried, else that error is the answer.
 * Bodies: a Buffer (fully read) is replayed on every attempt; a stream only while none of it
 * has been pulled (`bytesIn === 0`), as before.
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { HestiaError } from '../errors.ts';
import type { RoutedRequest } from '../routing/route-request.ts';
import type { Lease, ServiceHandle } from '../services/types.ts';
import { type AttemptState, type Failover, nextAttempt } from './attempt-policy.ts';
import { type Timed, upstreamTimeoutError } from './deadlines.ts';
import { classifyFailure, type FailureKind, failureCode, failureToError } from './failures.ts';
import type { ProxyContext } from './proxy-context.ts';
import { joinUpstreamPath } from './target-path.ts';
import { type BodyOwner, UpstreamBodySource } from './upstream-body-source.ts';
import type { UpstreamTarget } from './upstream-pools.ts';

function retryNow(f: Forwarding): void {
  f.retryTimer = null;
  f.dispatchAttempt();
}

/** Which upstream timeout a request's deadline is (deadlines.ts). */
const NO_TIMEOUT = 0;
const HEADERS_TIMEOUT = 1;
const BODY_TIMEOUT = 2;

const NO_HEADERS: string[] = [];

/** The upstream request's id and header list (headers.ts `UpstreamRequestHead` is one). */
export interface ForwardHead {
  readonly requestId: string;
  readonly headers: string[];
}

export abstract class Forwarding implements Dispatcher.DispatchHandler, BodyOwner, Timed, AttemptState, Failover {
  /** The request id: upstream, in the log line, echoed to the client ('' until one is needed). */
  requestId: string;
  /** null only for a request refused before a service was found (Exchange.refused). */
  readonly service: ServiceHandle | null;
  readonly method: string;
  /** Upstream request headers (flat list), built once and reused by every attempt. */
  readonly headers: string[];
  /**
   * The request body: null for none; a Buffer (fully read, replayable); or a stream pulled
   * through an UpstreamBodySource (the client's request, or routing's replaying stream).
   */
  body: Buffer | Readable | null;
  /** The raw part of the target below the service (`''`, `/…` or `?…`). */
  readonly rest: string;
  bytesIn = 0;
  bytesOut = 0;
  retryTimer: NodeJS.Timeout | null = null;
  private resumeUpstream: (() => void) | null = null;
  /** The strategy's reason for the current upstream (logged as `route_reason`, never a header). */
  routeReason: string | null = null;
  /** The running upstream timeout's deadline (Timed; kept by pctx.deadlines), 0 = none. */
  deadline = 0;
  prevTimed: Timed | null = null;
  nextTimed: Timed | null = null;
  private timeoutKind = NO_TIMEOUT;

  protected lease: Lease | null = null;
  /** The request is over (answered, failed, or its client left); read by admission (LeaseWaiter). */
  ended = false;
  /** Attempts made so far (attempt-policy.ts `AttemptState`). */
  attempts = 0;
  /** The current attempt goes to the fallback (attempt-policy.ts `AttemptState`). */
  onFallback = false;
  protected target: UpstreamTarget | null = null;
  protected abortUpstream: ((err?: Error) => void) | null = null;
  /** A HESTIA_* code, or CLIENT_CLOSED, when the request did not complete normally. */
  errorCode: string | null = null;
  protected routed: RoutedRequest | null = null;
  /** URLs a routed request was sent to (created on its first failure only). */
  private tried: Set<string> | null = null;
  /** The strategy found no instance left after a failure. */
  private noInstance: HestiaError | null = null;

  /**
   * Everything a forwarding needs, given once (`head`: the upstream request id and headers, from
   * headers.ts, or null for a request refused before they were built).
   */
  constructor(
    protected readonly pctx: ProxyContext,
    service: ServiceHandle | null,
    method: string,
    rest: string,
    head: ForwardHead | null,
    body: Buffer | Readable | null,
  ) {
    this.service = service;
    this.method = method;
    this.rest = rest;
    this.requestId = head === null ? '' : head.requestId;
    this.headers = head === null ? NO_HEADERS : head.headers;
    this.body = body;
  }

  /** Answer with a Hestia error: nothing of the upstream's response was delivered. */
  abstract reject(err: HestiaError): void;
  /** Whether the upstream's response head was already delivered. */
  protected abstract responseStarted(): boolean;
  /** The upstream failed after the response began: cut it so it is never seen as complete. */
  protected abstract abortResponse(kind: FailureKind, err: Error): void;
  abstract onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean;
  abstract onData(chunk: Buffer): boolean;
  abstract onComplete(): void;

  /** Origin of the upstream tried last (proxy-context.ts `EndedRequest`). */
  get upstream(): string | null {
    return this.target?.origin ?? null;
  }

  /** Forward to the strategy's choice, or the lease's base URL when the service has none. */
  protected startForwarding(lease: Lease, routed: RoutedRequest | null): void {
    this.lease = lease;
    this.routed = routed;
    this.useTarget(routed === null ? lease.baseUrl : routed.url);
    if (this.target !== null) this.dispatchAttempt();
  }

  protected useTarget(baseUrl: string): void {
    try {
      this.target = this.pctx.pools.target(baseUrl, this.service!.config.upstream_max_connections);
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

  /** Call from onHeaders (final status): keeps `resume` for backpressure, marks the instance healthy. */
  protected upstreamAnswered(resume: () => void): void {
    this.resumeUpstream = resume;
    this.startTimeout(BODY_TIMEOUT);
    if (this.routed !== null && !this.onFallback) this.routed.answered();
  }

  /** attempt-policy.ts `AttemptState`: part of a streamed body was sent (it cannot be replayed). */
  get bodyStarted(): boolean {
    return this.bytesIn > 0 && !Buffer.isBuffer(this.body);
  }

  dispatchAttempt(): void {
    if (this.ended) return;
    const target = this.target!;
    const body = this.body;
    this.attempts++;
    target.pool.dispatch(
      {
        path: joinUpstreamPath(target.basePath, this.rest),
        method: this.method as Dispatcher.HttpMethod,
        headers: this.headers,
        body: body === null || Buffer.isBuffer(body) ? body : new UpstreamBodySource(body, this),
        // The timeouts are ours (deadlines.ts): undici's would allocate a timer per request.
        headersTimeout: 0,
        bodyTimeout: 0,
      },
      this,
    );
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.ended) abort();
    else {
      this.abortUpstream = abort;
      // undici writes the request now: the headers timeout starts (not while it waited in the pool).
      this.startTimeout(HEADERS_TIMEOUT);
    }
  }

  // ---- upstream timeouts (deadlines.ts) --------------------------------------------------

  private startTimeout(kind: number): void {
    const cfg = this.service!.config;
    const ms = kind === HEADERS_TIMEOUT ? cfg.upstream_headers_timeout_ms : cfg.upstream_body_timeout_ms;
    if (ms <= 0) {
      this.stopTimeout();
      return;
    }
    this.timeoutKind = kind;
    this.pctx.deadlines.track(this, ms);
  }

  private stopTimeout(): void {
    if (this.timeoutKind === NO_TIMEOUT) return;
    this.timeoutKind = NO_TIMEOUT;
    this.pctx.deadlines.untrack(this);
  }

  /** Call from onData: body data arrived, the body timeout starts over. */
  protected bodyProgress(): void {
    if (this.timeoutKind === BODY_TIMEOUT)
      this.deadline = performance.now() + this.service!.config.upstream_body_timeout_ms;
  }

  /** Call when onData returns false: our client is slow, not the upstream; no body timeout runs. */
  protected bodyPaused(): void {
    this.stopTimeout();
  }

  /** Resume an upstream body paused by backpressure (and its body timeout). */
  resumeBody(): void {
    const resume = this.resumeUpstream;
    if (resume === null || this.ended) return;
    if (this.abortUpstream !== null) this.startTimeout(BODY_TIMEOUT);
    resume();
  }

  onDeadline(): void {
    const kind = this.timeoutKind;
    this.timeoutKind = NO_TIMEOUT;
    const abort = this.abortUpstream;
    if (abort === null) return;
    const cfg = this.service!.config;
    abort(
      kind === HEADERS_TIMEOUT
        ? upstreamTimeoutError('headers', cfg.upstream_headers_timeout_ms)
        : upstreamTimeoutError('body', cfg.upstream_body_timeout_ms),
    );
  }

  /** Call from onComplete: the upstream's answer is whole. */
  protected upstreamComplete(): void {
    this.abortUpstream = null;
    this.stopTimeout();
  }

  onError(err: Error): void {
    this.abortUpstream = null;
    this.stopTimeout();
    if (this.ended) return; // we aborted because the client left
    const kind = classifyFailure(err);
    if (this.responseStarted()) {
      this.errorCode = kind === 'body-timeout' ? 'HESTIA_UPSTREAM_TIMEOUT' : 'HESTIA_UPSTREAM_ERROR';
      this.publish('proxy_error', { code: this.errorCode, cause: failureCode(err), phase: 'body' });
      this.abortResponse(kind, err);
      return;
    }
    const routed = this.onFallback ? null : this.routed;
    // Reset before a response counts as a failed instance too (docs/strategies.md), even when
    // this request cannot be retried because its body already streamed.
    if (routed !== null && (kind === 'connect' || kind === 'reset')) routed.connectFailed(err);
    const from = this.target!.origin;
    const next = nextAttempt(kind, this, this.service!.config, this.lease!.fallbackUrl, routed !== null ? this : null);
    if (this.target === null) return; // the strategy's new URL was unusable: already answered
    if (next.action === 'retry') {
      this.publish('proxy_retry', {
        attempt: this.attempts + 1,
        cause: failureCode(err),
        ...(routed !== null ? { from, failover: next.failover } : {}),
      });
      this.retryTimer = setTimeout(retryNow, next.delayMs, this);
      return;
    }
    if (next.action === 'fallback') {
      this.onFallback = true;
      this.useTarget(next.url);
      if (this.target === null) return;
      this.publish('proxy_fallback', { from, cause: failureCode(err) });
      // Next turn of the event loop: not from inside undici's error callback.
      this.retryTimer = setTimeout(retryNow, 0, this);
      return;
    }
    this.fail(kind, err);
  }

  /**
   * attempt-policy.ts `Failover`: ask the strategy again after a failed attempt and aim the next
   * one at its choice. True when that is an instance this request has not tried (a free failover).
   */
  reroute(): boolean {
    const routed = this.routed!;
    const failed = routed.url;
    let url: string;
    try {
      url = routed.next();
    } catch (err) {
      this.noInstance =
        err instanceof HestiaError ? err : new HestiaError('HESTIA_INTERNAL', 'routing failed while retrying');
      return false;
    }
    this.routeReason = routed.decision.reason;
    if (url !== failed) this.useTarget(url);
    if (this.target === null) return false; // unusable URL: already answered
    this.tried ??= new Set([failed]);
    const tried = this.tried;
    if (tried.has(url) || tried.size > this.service!.config.instances.length) return false;
    tried.add(url);
    return true;
  }

  /** attempt-policy.ts `Failover`: the strategy found no instance left. */
  get exhausted(): boolean {
    return this.noInstance !== null;
  }

  private fail(kind: FailureKind, err: unknown): void {
    const e =
      !this.onFallback && this.noInstance !== null
        ? this.noInstance
        : failureToError(kind, err, {
            serviceId: this.service!.id,
            attempts: this.attempts,
            upstream: this.target!.origin,
          });
    this.publish('proxy_error', { code: e.code, cause: failureCode(err), phase: 'headers' });
    this.reject(e);
  }

  protected publish(type: 'proxy_retry' | 'proxy_fallback' | 'proxy_error', details: Record<string, unknown>): void {
    this.pctx.ctx.bus.publish(type, this.service!.id, {
      requestId: this.requestId,
      upstream: this.target?.origin ?? null,
      attempts: this.attempts,
      ...details,
    });
  }

  /** Stop whatever is still pending upstream (a retry timer, the request in flight). */
  protected stopUpstream(): void {
    this.stopTimeout();
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    if (this.abortUpstream !== null) {
      const abort = this.abortUpstream;
      this.abortUpstream = null;
      abort();
    }
  }
}
