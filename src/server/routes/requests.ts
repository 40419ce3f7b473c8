/**
 * `POST /v1/requests` (SPEC §2): the dispatcher. One HTTP request described as JSON, sent
 * through the same queue, routing strategy and forwarding as `/services/{id}/…`, answered as
 * `{status, headers, body, bodyEncoding?}` whatever the upstream's status.
 *
 * validate (400 naming the field: the body must be parsed to know the service id) → admission,
 * the same steps as every door (proxy/admission.ts: shutting down (503) → service lookup → auth
 * (done earlier by the control plane's hook, see DISPATCH_DOOR) → unknown service (404) → lease:
 * hot path, else wait in the service's queue; a client that leaves, leaves the queue) → route →
 * forward (the proxy's forwarding: pools, header rules, timeouts, attempt policy) → collect at
 * most `dispatcher.max_response_bytes` (502 HESTIA_RESPONSE_TOO_LARGE beyond) → encode →
 * report (the proxy's log line and observer call, for every admitted request, refusals too).
 * The lease is released exactly once, in the `finally`, whatever happened.
 */
import type { FastifyInstance } from 'fastify';
import { HestiaError, unknownServiceError } from '../../errors.ts';
import type { GatewayContext } from '../../gateway-context.ts';
import { acquireLeaseAsync, admit, type Door } from '../../proxy/admission.ts';
import type { EndedRequest, ProxyHandler } from '../../proxy/handler.ts';
import { buildDispatchHeaders } from '../../proxy/headers.ts';
import { routeRequest } from '../../routing/route-request.ts';
import type { Lease } from '../../services/types.ts';
import { collectCapped } from '../collect-body.ts';
import { encodeResponseBody, flattenHeaders } from '../dispatch-body.ts';
import { type DispatchRequest, parseDispatchRequest } from '../dispatch-validation.ts';

export const DISPATCH_ROUTE = '/v1/requests';

/** Flat [name, value, …] → name → values, for flattenHeaders (which joins repeats). */
function group(flat: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i]!.toLowerCase();
    const values = out[name];
    if (values === undefined) out[name] = [flat[i + 1]!];
    else values.push(flat[i + 1]!);
  }
  return out;
}

async function* once(bytes: Buffer): AsyncGenerator<Buffer> {
  yield bytes;
}

/**
 * The dispatcher's door (proxy/admission.ts): the service is named by the validated body's
 * `serviceId`. No auth step of its own: the control plane's hook authenticated the request
 * before its body was parsed, and its preHandler held a scoped key to the body's `serviceId`.
 */
const DISPATCH_DOOR: Door<DispatchRequest> = {
  pick: (d) => ({ id: d.serviceId, rest: d.path }),
  unknownService: (id, known) => unknownServiceError(id ?? '', known),
};

/** The dispatched request as reported when it ends (proxy-context.ts `EndedRequest`). */
type DispatchEnd = { -readonly [K in keyof EndedRequest]: EndedRequest[K] };

export async function registerRequestRoutes(
  app: FastifyInstance,
  ctx: GatewayContext,
  proxy: ProxyHandler,
): Promise<void> {
  app.post(DISPATCH_ROUTE, async (request, reply) => {
    const startedAt = performance.now();
    // Before admission: the service id is in the body (400 naming the field; not reported).
    const parsed = parseDispatchRequest(request.body);
    if (!parsed.ok) throw parsed.error;
    const d = parsed.value;
    const head = buildDispatchHeaders(d.headers, request.raw, ctx.config.server.trust_proxy);
    const end: DispatchEnd = {
      requestId: head.requestId,
      service: null,
      method: d.method,
      startedAt,
      bytesIn: d.body?.length ?? 0,
      bytesOut: 0,
      upstream: null,
      errorCode: null,
      routeReason: null,
    };

    // The client leaving (its connection closes before our answer) aborts the wait in the
    // queue and whatever is in flight upstream.
    const ac = new AbortController();
    const raw = reply.raw;
    const onClose = () => {
      if (!raw.writableFinished) ac.abort();
    };
    raw.on('close', onClose);

    let lease: Lease | null = null;
    let status = 0;
    let upstreamStatus: number | null = null;
    try {
      const admitted = admit(ctx, DISPATCH_DOOR, d);
      end.service = admitted.service;
      if (admitted.error !== null) throw admitted.error;
      const service = admitted.service;
      lease = await acquireLeaseAsync(ctx.log, service, head.requestId, ac.signal);
      const viewHeaders: Record<string, string> = { ...d.headers };
      if (d.body !== null) viewHeaders['content-length'] = String(d.body.length);
      const routed = await routeRequest(ctx.routing, service.id, lease.baseUrl, {
        method: d.method,
        path: d.path,
        headers: viewHeaders,
        body: d.body === null ? once(Buffer.alloc(0)) : once(d.body),
      });
      end.routeReason = routed?.decision.reason ?? null;
      const res = await proxy.forward({
        service,
        lease,
        routed,
        method: d.method,
        path: d.path,
        headers: head.headers,
        requestId: head.requestId,
        // The dispatcher's body is already whole: the exact bytes, replayable on a retry.
        body: d.body,
        signal: ac.signal,
      });
      upstreamStatus = res.status;
      end.upstream = res.upstream;
      end.routeReason = res.routeReason;
      const cap = ctx.config.dispatcher.max_response_bytes;
      const collected = await collectCapped(res.body, cap);
      end.bytesOut = res.bytesOut();
      if (!collected.ok) {
        throw new HestiaError(
          'HESTIA_RESPONSE_TOO_LARGE',
          `the response of service '${service.id}' is larger than dispatcher.max_response_bytes (${cap} bytes); ` +
            `request it through /services/${service.id}/… to stream it`,
          { serviceId: service.id, limitBytes: cap, upstreamStatus: res.status },
        );
      }
      const headers = flattenHeaders(group(res.headers));
      const encoded = encodeResponseBody(headers['content-type'], collected.bytes);
      reply.header('x-request-id', head.requestId);
      if (lease.coldStart) reply.header('x-hestia-cold-start', String(Math.round(lease.waitedMs)));
      status = 200;
      return { status: res.status, headers, ...encoded };
    } catch (err) {
      if (ac.signal.aborted) {
        // Nobody is left to answer; Fastify must not try to.
        status = 499;
        end.errorCode = 'CLIENT_CLOSED';
        reply.hijack();
        raw.destroy();
        return reply;
      }
      if (err instanceof HestiaError) {
        status = err.status;
        end.errorCode = err.code;
        reply.header('x-request-id', head.requestId);
      } else status = 500;
      throw err;
    } finally {
      raw.off('close', onClose);
      lease?.release();
      // The same log line and metrics observer as a request through /services.
      proxy.reportEnd(end, DISPATCH_ROUTE, status, lease, false, upstreamStatus);
    }
  });
}
