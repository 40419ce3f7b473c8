/**
 * Which service serves which model: the `models:` lists of every service, as one lookup for the
 * model endpoint (`POST /v1/chat/completions`, `/api/chat`, … pick the service by the body's
 * `model`) and the model lists (`GET /v1/models`, `GET /api/tags`).
 *
 * Built from a config and cached per config object, so a reload is picked up on the next request
 * and nothing is rebuilt per request. Names are unique across services (config/resolve.ts refuses
 * a duplicate, naming both services).
 */
import type { Config } from '../config/schema.ts';

export interface ModelEntry {
  /** The name a client sends as `model`. */
  readonly model: string;
  readonly serviceId: string;
}

export class ModelCatalog {
  private readonly byName = new Map<string, string>();
  /** Every model, in config order (services in order, each service's names in order). */
  readonly entries: readonly ModelEntry[];

  constructor(config: Config) {
    const entries: ModelEntry[] = [];
    for (const [serviceId, svc] of Object.entries(config.services)) {
      for (const model of svc.models) {
        if (this.byName.has(model)) continue;
        this.byName.set(model, serviceId);
        entries.push({ model, serviceId });
      }
    }
    this.entries = entries;
  }

  /** The service that serves `model`, or undefined. Exact match on the configured name. */
  serviceFor(model: string): string | undefined {
    return this.byName.get(model);
  }

  /** The models a caller may see: all, or those of the services a scoped key allows. */
  visibleTo(services: readonly string[] | null): ModelEntry[] {
    return services === null ? [...this.entries] : this.entries.filter((e) => services.includes(e.serviceId));
  }
}

const cache = new WeakMap<Config, ModelCatalog>();

/** The catalog of `config`, built once per config object. */
export function modelCatalog(config: Config): ModelCatalog {
  let c = cache.get(config);
  if (c === undefined) {
    c = new ModelCatalog(config);
    cache.set(config, c);
  }
  return c;
}
