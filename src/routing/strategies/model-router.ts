/**
 * `model_router`: route by the model named in the JSON request body (the original's shape):
 *
 * ```yaml
 * strategy: model_router
 * routing:
 *   model_key: model          # default
 *   by_model:
 *     llama3: http://ollama-a:11434
 *     mistral: http://ollama-b:11434
 * ```
 *
 * Lookup: `by_model[value]`; failing that, for an Ollama-style `name:tag` value, `by_model[name]`
 * (so `llama3:8b` finds `llama3`). Anything else — no body, a body that is not JSON, larger than
 * `routing.body_cap_bytes`, not an object, no string under `model_key`, an unmapped model —
 * goes to `base_url`, never to an error: an unroutable request still reaches the default server,
 * which answers it as it would without Hestia.
 *
 * Health is deliberately not consulted: a model lives on one server, so there is nothing to
 * fail over to (`fallback_url` still applies in the proxy).
 */
import type { Strategy, StrategyDecision } from '../types.ts';

export const modelRouter: Strategy = {
  name: 'model_router',
  version: '1.0.0',
  features: ['json_body', 'model_routing'],
  select(view, snapshot, config): StrategyDecision {
    const base = snapshot.baseUrl;
    const { model_key: key, by_model: byModel } = config.routing;
    const body = view.body;
    if (body.status !== 'json') return { url: base, reason: `body ${body.status.replace('_', ' ')}: base_url` };
    const value = body.value;
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      return { url: base, reason: 'JSON body is not an object: base_url' };
    const model = (value as Record<string, unknown>)[key];
    if (typeof model !== 'string') return { url: base, reason: `no string '${key}' in body: base_url` };
    // Own properties only: a model called `__proto__` or `constructor` must not find Object.prototype.
    const exact = Object.hasOwn(byModel, model) ? byModel[model] : undefined;
    if (exact !== undefined) return { url: exact, reason: `${key} '${model}' → by_model` };
    const colon = model.indexOf(':');
    if (colon > 0) {
      const name = model.slice(0, colon);
      const byName = Object.hasOwn(byModel, name) ? byModel[name] : undefined;
      if (byName !== undefined) return { url: byName, reason: `${key} '${model}' → by_model '${name}'` };
    }
    return { url: base, reason: `${key} '${model}' not in by_model: base_url` };
  },
};
