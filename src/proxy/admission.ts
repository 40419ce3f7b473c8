/**
 * The admission pipeline: how one request gets in, the same for every way in ("door": the
 * HTTP proxy `/services/{id}/…`, WebSocket upgrades, the dispatcher `POST /v1/requests`, the
 * model endpoints (`POST /v1/chat/completions`, …: model-door.ts), and the doors still to come, which differ only in how they pick the service). One order, one
 * implementation:
 *
 * 1. **shutting down** → 503 HESTIA_SHUTTING_DOWN, whatever the request names;
 * 2. **service lookup**: the door picks the id (`Door.pick`: from the path, the JSON body, …;
 *    it may refuse a request it never takes, e.g. TRACE), the id is looked up, and the door may
 *    refuse the target for that service (`Door.refuseTarget`: a path climbing above its root);
 * 3. **auth** (`Door.authorize`): refuse, or allow after stripping the gateway's own
 *    credentials; an unknown id (or none) is answered only after this step, so a client without
 *    credentials learns nothing about which services exist (401, never a 404 listing them);
 * 4. **unknown service** → the door's 404 (`Door.unknownService`);
 * 5. **lease with abort** (`acquireLease`): `tryAcquire()` on the hot path, else (a door may
 *    answer instead, e.g. the waiting page) `acquire({signal})` in the service's queue, which the
 *    request leaves when its client leaves (`leaveQueue`); a lease arriving after that is
 *    released on arrival;
 * 6. **route** (routing strategy, routing/route-request.ts) and 7. **attempts** (attempt-policy.ts:
 *    retry → fallback → fail) → **forward** (forward.ts, or the tunnel), then 8. **report**
 *    (ProxyContext.report: one log line and the observer call, exactly once per request).
 *
 * Steps 1–5 live here; 6–8 in the exchange (exchange.ts), the tunnel (websocket.ts) and the
 * dispatcher route (server/routes/requests.ts), which all call these functions.
 *
 * Where doors differ, on purpose:
 * - the dispatcher validates its JSON body first (400 naming the field): it cannot know the
 *   service id before parsing it. Its auth is the control plane's Fastify hook, which runs
 *   before the body is parsed (and its preHandler checks a scoped key against the body's
 *   `serviceId`), so its door has no `authorize`;
 * - only the HTTP proxy door may answer a cold service with the waiting page (`answerCold`);
 * - WebSocket upgrades are not routed (docs/strategies.md).
 *
 * Hot path: `admit` allocates only its result (the proxy door's pick returns the object
 * `splitServicePath` builds anyway); `acquireLease` allocates nothing when `tryAcquire()` gives
 * a lease. The AbortController exists only for a request that waits in a queue.
 */
import { HestiaError } from '../errors.ts';
import type { GatewayContext } from '../gateway-context.ts';
import type { Logger } from '../observability/logger.ts';
import type { Lease, ServiceHandle } from '../services/types.ts';
import type { ServicePath } from './target-path.ts';

/** An auth step's verdict: refused with the error; null = allowed (credentials stripped); undefined = not checked. */
export type AuthVerdict = HestiaError | null | undefined;

/** Which door a request came through (the request log's `door`): `/services/{id}`, a `Host`, a service's own listener. */
export type DoorKind = 'path' | 'host' | 'port';

/** A way in: how it picks the service, checks credentials and names an unknown service. */
export interface Door<R> {
  /** For the request log; absent = the dispatcher's. */
  readonly kind?: DoorKind;
  /**
   * The service the request names (`id` percent-decoded, `rest` the raw part below it), null
   * when it names none, or the error refusing a request this door cannot take at all.
   */
  pick(req: R): ServicePath | null | HestiaError;
  /**
   * Optional, part of the lookup: a target this door cannot forward to this (configured)
   * service, e.g. a path climbing above its root; the refusal is reported under the service.
   */
  refuseTarget?(service: ServiceHandle, rest: string): HestiaError | null;
  /**
   * The auth step (see ProxyHooks.authorize). `serviceId` is undefined when the request names
   * no configured service. Absent when this door has no auth step of its own.
   */
  readonly authorize?: ((req: R, serviceId: string | undefined) => AuthVerdict) | undefined;
  /**
   * The answer for a request naming no configured service (`id` null: naming none at all);
   * `req` for a door whose answer depends on it (the model door lists the caller's models).
   */
  unknownService(id: string | null, known: string[], req?: R): HestiaError;
}

export type Admission =
  | { readonly error: HestiaError; readonly service: ServiceHandle | null; readonly rest: ''; readonly authed: false }
  | {
      readonly error: null;
      readonly service: ServiceHandle;
      /** The raw part of the target below the service (`''`, `/…` or `?…`). */
      readonly rest: string;
      /** An auth step ran and allowed it (it may have edited the credential headers). */
      readonly authed: boolean;
    };

function refused(error: HestiaError, service: ServiceHandle | null): Admission {
  return { error, service, rest: '', authed: false };
}

/** Steps 1–4: shutting down → service lookup → auth → unknown service. */
export function admit<R>(ctx: GatewayContext, door: Door<R>, req: R): Admission {
  if (ctx.shuttingDown) return refused(new HestiaError('HESTIA_SHUTTING_DOWN', 'hestia is shutting down'), null);
  const picked = door.pick(req);
  if (picked instanceof HestiaError) return refused(picked, null);
  const service = picked === null ? undefined : ctx.services.get(picked.id);
  if (service !== undefined && door.refuseTarget !== undefined) {
    const bad = door.refuseTarget(service, picked!.rest);
    if (bad !== null) return refused(bad, service);
  }
  const verdict = door.authorize?.(req, service?.id);
  if (verdict !== undefined && verdict !== null) return refused(verdict, service ?? null);
  if (service === undefined) return refused(door.unknownService(picked?.id ?? null, ctx.services.ids(), req), null);
  return { error: null, service, rest: picked!.rest, authed: verdict === null };
}

/** Someone waiting for a lease: the proxy's exchange, a tunnel, a dispatched request. */
export interface LeaseWaiter {
  readonly requestId: string;
  /** The request ended (its client left): a lease arriving now is released at once. */
  readonly ended: boolean;
  /** Set while the request waits in a queue; its end calls `leaveQueue`. */
  waitAbort: AbortController | null;
  /** The lease is the request's: route and forward (never called once `ended`). */
  attachLease(lease: Lease): void;
  /** Waiting failed (queue full or timed out, start failed, shutting down, …): answer with it. */
  reject(err: HestiaError): void;
  /**
   * Optional: the service has no lease to give at once. Answer some other way instead of
   * waiting (the HTTP door's waiting page for a browser); true when answered.
   */
  answerCold?(service: ServiceHandle): boolean;
}

/** Step 5: the hot path's `tryAcquire()`, else the door's `answerCold`, else the queue. */
export function acquireLease(log: Logger, service: ServiceHandle, w: LeaseWaiter): void {
  const lease = service.tryAcquire();
  if (lease !== null) {
    w.attachLease(lease);
    return;
  }
  if (w.answerCold?.(service) === true) return;
  // The only AbortController on the proxy's way: created for queued requests, never on the hot path.
  const ac = new AbortController();
  w.waitAbort = ac;
  service
    .acquire({ signal: ac.signal })
    .then(
      (l) => {
        w.waitAbort = null;
        if (w.ended) l.release();
        else w.attachLease(l);
      },
      (err: unknown) => {
        w.waitAbort = null;
        if (w.ended) return; // it left the queue because its client left
        if (err instanceof HestiaError) w.reject(err);
        else throw err;
      },
    )
    .catch((err: unknown) => {
      log.error({ err, service_id: service.id, request_id: w.requestId }, 'acquire failed');
      w.reject(new HestiaError('HESTIA_INTERNAL', 'internal error while waiting for the service'));
    });
}

/** The request ended: leave the service's queue if it waits in one. */
export function leaveQueue(w: LeaseWaiter): void {
  const ac = w.waitAbort;
  if (ac === null) return;
  w.waitAbort = null;
  ac.abort();
}

/**
 * `acquireLease` for an async door (the dispatcher): resolves with the lease, rejects with the
 * HestiaError refusing it, or with `signal.reason` once the client left (`signal` aborted),
 * which takes the request out of the queue.
 */
export function acquireLeaseAsync(
  log: Logger,
  service: ServiceHandle,
  requestId: string,
  signal: AbortSignal,
): Promise<Lease> {
  return new Promise<Lease>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const w: LeaseWaiter = {
      requestId,
      get ended() {
        return signal.aborted;
      },
      waitAbort: null,
      attachLease: resolve,
      reject,
    };
    signal.addEventListener(
      'abort',
      () => {
        leaveQueue(w);
        reject(signal.reason);
      },
      { once: true },
    );
    acquireLease(log, service, w);
  });
}
