/**
 * The model lists of the model endpoint (SPEC §11): what a client of the OpenAI or Ollama APIs
 * asks first.
 *
 * - `GET /v1/models` → OpenAI's `{object: "list", data: [{id, object: "model", created, owned_by}]}`
 *   with `owned_by` the service id, plus `hestia: {service, state}` per entry;
 * - `GET /v1/models/{model}` → one entry (a name may contain `/` and `:`); an unknown one → 404
 *   `model_not_found`;
 * - `GET /api/tags` → Ollama's `{models: [{name, model, modified_at, size, digest, details}]}`,
 *   plus the same `hestia` field.
 *
 * A key scoped to services sees only the models of those services. Errors on the `/v1/models`
 * routes (auth refusals included: the hook's error lands in this plugin's handler) use OpenAI's
 * error shape; on `/api/tags` Hestia's envelope, whose string `error` is what Ollama's clients read.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { HestiaError, openAiErrorBody, unknownModelError } from '../../errors.ts';
import type { GatewayContext } from '../../gateway-context.ts';
import { type ModelEntry, modelCatalog } from '../../routing/model-catalog.ts';

/** `created` of every model: when this gateway started (the models have no date of their own). */
const CREATED = Math.floor(Date.now() / 1000);
const MODIFIED_AT = new Date(CREATED * 1000).toISOString();

export async function registerModelRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const visible = (req: FastifyRequest): ModelEntry[] =>
    modelCatalog(ctx.config).visibleTo(req.hestiaAuth?.ok ? req.hestiaAuth.services : null);
  const hestia = (e: ModelEntry) => ({ service: e.serviceId, state: ctx.services.get(e.serviceId)?.state ?? 'cold' });
  const openAiModel = (e: ModelEntry) => ({
    id: e.model,
    object: 'model',
    created: CREATED,
    owned_by: e.serviceId,
    hestia: hestia(e),
  });

  await app.register(async (openai) => {
    openai.setErrorHandler((err, _req, reply) => {
      const e =
        err instanceof HestiaError ? err : new HestiaError('HESTIA_INTERNAL', 'internal error listing the models');
      if (!(err instanceof HestiaError)) ctx.log.error({ err }, 'model list failed');
      for (const [k, v] of Object.entries(e.headers)) reply.header(k, v);
      return reply.status(e.status).send(openAiErrorBody(e));
    });
    openai.get('/v1/models', async (req) => ({ object: 'list', data: visible(req).map(openAiModel) }));
    openai.get<{ Params: { '*': string } }>('/v1/models/*', async (req) => {
      const name = req.params['*'];
      const entries = visible(req);
      const entry = entries.find((e) => e.model === name);
      if (entry === undefined)
        throw unknownModelError(
          name,
          entries.map((e) => e.model),
        );
      return openAiModel(entry);
    });
  });

  app.get('/api/tags', async (req) => ({
    models: visible(req).map((e) => ({
      name: e.model,
      model: e.model,
      modified_at: MODIFIED_AT,
      size: 0,
      digest: '',
      details: { parent_model: '', format: '', family: '', families: null, parameter_size: '', quantization_level: '' },
      hestia: hestia(e),
    })),
  }));
}
