/**
 * The model door (SPEC §11): `POST /v1/chat/completions`, `/v1/messages`, `/api/chat`, … (the
 * list: config/model-endpoints.ts) on the main port pick their service by the model the body
 * names. A door on the one admission pipeline (admission.ts), not a copy of it: after the body's
 * model is read, `admit` (shutting down → lookup → auth → unknown) and `acquireLease` run as for
 * `/services/{id}`, and the `Exchange` forwards (lifecycle, retries, streaming, aborts, report).
 *
 * What differs, and why:
 * - **the credential is checked before the body is read** (nobody without a key makes the
 *   gateway read a body): `authenticate()` runs first and strips the gateway's credentials; the
 *   door's `authorize` step then only checks the key's scope against the model's service (403),
 *   so a request is counted once by the brute-force limits;
 * - **the model comes from the body**: JSON within `server.model_body_cap_bytes` (8 MiB: requests with images inline are large) (json-body-peek.ts),
 *   or the `model` field of a `multipart/form-data` body (audio uploads), parsed incrementally
 *   so that only the prefix read so far is kept (multipart-field-peek.ts). Either way the exact
 *   bytes the client sent are forwarded (a Buffer, or the prefix replayed before the rest of the
 *   stream);
 * - **the target** is the chosen service's `base_url` + the same path and query;
 * - **errors** use OpenAI's shape on `/v1/*` (`openAiErrorBody`: the `openai` and Anthropic
 *   clients read `error.message`) and Hestia's envelope on `/api/*` (Ollama's clients read the
 *   string `error`); an unknown model is 404 `model_not_found` / HESTIA_UNKNOWN_MODEL with the
 *   models the caller may see; a body without a model is 400;
 * - **the route** in the log line and metrics is the endpoint's path (`/v1/chat/completions`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { ModelEndpoint } from '../config/model-endpoints.ts';
import { HestiaError, openAiErrorBody, unknownModelError } from '../errors.ts';
import type { GatewayContext } from '../gateway-context.ts';
import { readBodyForRouting } from '../routing/json-body-peek.ts';
import { modelCatalog } from '../routing/model-catalog.ts';
import { isMultipartForm, readMultipartField } from '../routing/multipart-field-peek.ts';
import type { ServiceHandle } from '../services/types.ts';
import { acquireLease, admit, type Door } from './admission.ts';
import { Exchange } from './exchange.ts';
import { buildUpstreamHeaders } from './headers.ts';
import type { ProxyContext } from './proxy-context.ts';

/** A model request as the door sees it once its body's model was read. */
export interface ModelAsk {
  readonly req: IncomingMessage;
  /** The model the body names, or the error refusing the body (no model, too large, not JSON). */
  readonly model: string | HestiaError;
  /** The key's services after the credential check: null = all; undefined = auth is off. */
  readonly scope: readonly string[] | null | undefined;
}

/** The model door, on `ctx`'s current config (the catalog follows reloads). */
export function modelDoor(ctx: GatewayContext): Door<ModelAsk> {
  return {
    pick(ask) {
      if (ask.model instanceof HestiaError) return ask.model;
      const id = modelCatalog(ctx.config).serviceFor(ask.model);
      return id === undefined ? null : { id, rest: ask.req.url ?? '/' };
    },
    authorize(ask, serviceId) {
      if (ask.scope === undefined) return undefined; // auth off
      if (ask.scope === null || serviceId === undefined || ask.scope.includes(serviceId)) return null;
      return new HestiaError('HESTIA_FORBIDDEN', `this API key may not use the model '${String(ask.model)}'`);
    },
    unknownService(_id, _known, ask) {
      const model = ask === undefined || ask.model instanceof HestiaError ? '' : ask.model;
      const visible = modelCatalog(ctx.config).visibleTo(ask?.scope ?? null);
      return unknownModelError(
        model,
        visible.map((e) => e.model),
      );
    },
  };
}

interface ReadModel {
  model: string | HestiaError;
  forward: Buffer | Readable;
}

/** The model the body names (JSON `model`, or the multipart `model` field), and the bytes to forward. */
async function readModel(req: IncomingMessage, capBytes: number): Promise<ReadModel> {
  const contentType = req.headers['content-type'];
  if (isMultipartForm(contentType)) {
    const read = await readMultipartField(req, contentType!, 'model', capBytes);
    const f = read.field;
    const model =
      f.status === 'found' && f.value !== ''
        ? f.value
        : f.status === 'too_large'
          ? new HestiaError(
              'HESTIA_PAYLOAD_TOO_LARGE',
              `the form's 'model' field must come within its first ${capBytes} bytes (server.model_body_cap_bytes)`,
            )
          : new HestiaError('HESTIA_BAD_REQUEST', "the form has no 'model' field: name the model to use");
    return { model, forward: read.forward };
  }
  const read = await readBodyForRouting(req, capBytes);
  const v = read.view;
  let model: string | HestiaError;
  if (v.status === 'json') {
    const m = (v.value as { model?: unknown } | null)?.model;
    model =
      typeof m === 'string' && m !== ''
        ? m
        : new HestiaError('HESTIA_BAD_REQUEST', "the body has no 'model': name the model to use");
  } else if (v.status === 'too_large') {
    model = new HestiaError(
      'HESTIA_PAYLOAD_TOO_LARGE',
      `the body is larger than ${capBytes} bytes (server.model_body_cap_bytes), so its 'model' cannot be read`,
    );
  } else model = new HestiaError('HESTIA_BAD_REQUEST', "the body must be JSON naming a 'model'");
  return { model, forward: read.forward };
}

/** One request to a model endpoint (server/app.ts sends every POST to one here). */
export function handleModelRequest(
  pctx: ProxyContext,
  door: Door<ModelAsk>,
  endpoint: ModelEndpoint,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const startedAt = performance.now();
  const ctx = pctx.ctx;
  const shape = endpoint.errors === 'openai' ? openAiErrorBody : undefined;
  // At most one exchange per request (its construction hooks the response's end, which reports).
  let current: Exchange | null = null;
  const exchange = (
    service: ServiceHandle | null,
    rest: string,
    head: ReturnType<typeof buildUpstreamHeaders> | null,
  ) => {
    const ex = new Exchange(pctx, req, res, service, rest, head, startedAt);
    current = ex;
    ex.route = endpoint.route;
    ex.errorShape = shape;
    return ex;
  };
  const refuse = (service: ServiceHandle | null, err: HestiaError) => exchange(service, '', null).reject(err);
  const internal = (err: unknown) => {
    ctx.log.error({ err, event_type: 'proxy_internal_error' }, 'model door failed');
    const e = new HestiaError('HESTIA_INTERNAL', 'internal error in the gateway');
    if (current !== null) current.reject(e);
    else refuse(null, e);
  };
  try {
    // Shutting down: refused by the pipeline's first step, before any body is read.
    if (ctx.shuttingDown) {
      const a = admit(ctx, door, { req, model: '', scope: undefined });
      refuse(a.service, a.error ?? new HestiaError('HESTIA_SHUTTING_DOWN', 'hestia is shutting down'));
      return;
    }
    // The credential, before the body is read.
    let scope: readonly string[] | null | undefined;
    if (ctx.auth.enabled) {
      const outcome = ctx.auth.authenticate(req.headers, req.socket.remoteAddress, req.url ?? '/');
      if (!outcome.ok) {
        refuse(null, outcome.error);
        return;
      }
      ctx.auth.stripGatewayCredentials(req.headers, outcome);
      scope = outcome.services;
    }
    readModel(req, ctx.config.server.model_body_cap_bytes)
      .then(
        ({ model, forward }) => {
          if (res.destroyed) {
            clientLeft(exchange(null, '', null));
            return;
          }
          const a = admit(ctx, door, { req, model, scope });
          if (a.error !== null) {
            refuse(a.service, a.error);
            discardRest(forward);
            return;
          }
          const head = buildUpstreamHeaders(req, ctx.config.server.trust_proxy, null, a.authed);
          const ex = exchange(a.service, a.rest, head);
          ex.body = forward;
          if (Buffer.isBuffer(forward)) ex.bytesIn = forward.length;
          acquireLease(ctx.log, a.service, ex);
        },
        () => clientLeft(exchange(null, '', null)), // the client's body failed: it is gone
      )
      .catch(internal);
  } catch (err) {
    internal(err);
  }
}

/** The client left while its body was read: reported once (499), nothing forwarded. */
function clientLeft(ex: Exchange): void {
  ex.errorCode = 'CLIENT_CLOSED';
  if (ex.res.closed) ex.finish();
  else ex.res.destroy();
}

/**
 * A refused request whose body was not read to its end: read the rest and drop it, so the client
 * (still uploading) gets to read the answer. Closing at once would reset the connection with
 * unread bytes in it, and the client would see ECONNRESET instead of the 413. Bounded by the
 * server's request timeout.
 */
function discardRest(forward: Buffer | Readable): void {
  if (Buffer.isBuffer(forward)) return;
  forward.on('error', () => {});
  forward.resume();
}
