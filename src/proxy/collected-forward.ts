/**
 * Forwarding for `POST /v1/requests`: the proxy's forwarding (forward.ts: same pools, header
 * rules, timeouts, retries, routing failover and fallback), with the response handed back as
 * `{status, headers, body}` where `body` is a Readable with backpressure (undici pauses while it
 * is full) and `cancel()` stops everything upstream. The caller owns the lease: it acquired it
 * and releases it once the body has been collected or abandoned.
 */
import { Readable } from 'node:stream';
import { HestiaError } from '../errors.ts';
import type { RoutedRequest } from '../routing/route-request.ts';
import type { Lease, ServiceHandle } from '../services/types.ts';
import { type FailureKind, failureCode } from './failures.ts';
import { Forwarding } from './forward.ts';
import { buildResponseHeaders } from './headers.ts';
import type { ProxyContext } from './proxy-context.ts';

export interface ForwardOptions {
  service: ServiceHandle;
  lease: Lease;
  /** routeRequest's result; null for a service without a strategy. */
  routed: RoutedRequest | null;
  method: string;
  /** Path below the service (leading `/`, raw query), already checked not to escape the base. */
  path: string;
  /** Upstream request headers, flat (headers.ts `buildDispatchHeaders`). */
  headers: string[];
  requestId: string;
  /** The whole body (replayable on every attempt), or null. */
  body: Buffer | null;
  /** Aborted when the caller's client leaves: stops the attempt, the retry or the body. */
  signal?: AbortSignal;
}

export interface ForwardedResponse {
  status: number;
  /** Upstream end-to-end headers, flat [name, value, …], duplicates kept. */
  headers: string[];
  /** The response body; an upstream failure mid-body destroys it with a HestiaError. */
  body: Readable;
  /** Origin of the upstream that answered. */
  upstream: string;
  /** The strategy's reason for that upstream, null without a strategy. */
  routeReason: string | null;
  bytesOut(): number;
  /** Stop reading: aborts the upstream response (same as destroying `body`). */
  cancel(): void;
}

class CollectedForward extends Forwarding {
  private pending: { resolve: (r: ForwardedResponse) => void; reject: (e: unknown) => void } | null;
  private stream: Readable | null = null;

  constructor(
    pctx: ProxyContext,
    o: ForwardOptions,
    resolve: (r: ForwardedResponse) => void,
    reject: (e: unknown) => void,
  ) {
    super(pctx, o.service, o.method, o.path, o, o.body);
    // The whole body: its bytes came in already.
    if (o.body !== null) this.bytesIn = o.body.length;
    this.routeReason = o.routed?.decision.reason ?? null;
    this.pending = { resolve, reject };
  }

  begin(lease: Lease, routed: RoutedRequest | null): void {
    this.startForwarding(lease, routed);
  }

  reject(err: HestiaError): void {
    if (this.ended) return;
    this.ended = true;
    this.errorCode = err.code;
    this.stopUpstream();
    const p = this.pending;
    this.pending = null;
    p?.reject(err);
  }

  /** The caller's client left, or the caller stopped reading. */
  cancel(): void {
    if (this.ended) return;
    this.ended = true;
    this.stopUpstream();
    const gone = new Error('the dispatch was cancelled');
    const p = this.pending;
    this.pending = null;
    if (p !== null) p.reject(gone);
    else if (this.stream !== null && !this.stream.destroyed) this.stream.destroy(gone);
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, _statusText: string): boolean {
    if (statusCode < 200) return true;
    if (this.ended) return false;
    this.upstreamAnswered(resume);
    const stream = new Readable({
      read: () => this.resumeBody(),
      destroy: (err, cb) => {
        this.cancel();
        cb(err);
      },
    });
    this.stream = stream;
    const p = this.pending!;
    this.pending = null;
    p.resolve({
      status: statusCode,
      headers: buildResponseHeaders(rawHeaders).headers,
      body: stream,
      upstream: this.target!.origin,
      routeReason: this.routeReason,
      bytesOut: () => this.bytesOut,
      cancel: () => stream.destroy(),
    });
    return true;
  }

  onData(chunk: Buffer): boolean {
    this.bytesOut += chunk.length;
    this.bodyProgress();
    if (this.stream!.push(chunk)) return true;
    this.bodyPaused();
    return false;
  }

  onComplete(): void {
    this.upstreamComplete();
    if (this.ended) return;
    this.ended = true;
    this.stream!.push(null);
  }

  protected responseStarted(): boolean {
    return this.stream !== null;
  }

  protected abortResponse(kind: FailureKind, err: Error): void {
    this.ended = true;
    const id = this.service!.id;
    const e =
      kind === 'body-timeout'
        ? new HestiaError('HESTIA_UPSTREAM_TIMEOUT', `service '${id}' stalled while sending its response`, {
            serviceId: id,
          })
        : new HestiaError('HESTIA_UPSTREAM_ERROR', `service '${id}' failed while sending its response`, {
            serviceId: id,
            cause: failureCode(err),
          });
    this.stream!.destroy(e);
  }
}

/** Forward one request; resolves at the upstream's response head, rejects with a HestiaError before it. */
export function forwardCollected(pctx: ProxyContext, o: ForwardOptions): Promise<ForwardedResponse> {
  return new Promise<ForwardedResponse>((resolve, reject) => {
    const f = new CollectedForward(pctx, o, resolve, reject);
    const signal = o.signal;
    if (signal !== undefined) {
      if (signal.aborted) {
        f.cancel();
        return;
      }
      signal.addEventListener('abort', () => f.cancel(), { once: true });
    }
    f.begin(o.lease, o.routed);
  });
}
