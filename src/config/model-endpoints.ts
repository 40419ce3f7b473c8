/**
 * The model endpoints on the main port (SPEC §11): the request paths routed by the body's
 * `model` rather than by a service id. Static API surface, shared by the door split
 * (server/app.ts), the model door (proxy/model-door.ts) and the scope rule (auth: a scoped key
 * gets past the credential check here, and the door then checks the model's service).
 */

/** How a model endpoint's body names the model, and which error shape its clients read. */
export interface ModelEndpoint {
  /** The route in logs and metrics (the path itself). */
  readonly route: string;
  /** `openai`: OpenAI's error shape (also what Anthropic's clients read); `ollama`: Hestia's envelope (string `error`). */
  readonly errors: 'openai' | 'ollama';
}

const OPENAI_PATHS = [
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/responses',
  '/v1/audio/transcriptions',
  '/v1/audio/translations',
  '/v1/audio/speech',
  '/v1/images/generations',
  '/v1/rerank',
  '/v1/messages',
];
const OLLAMA_PATHS = ['/api/chat', '/api/generate', '/api/embed', '/api/embeddings', '/api/show'];

const ENDPOINTS: ReadonlyMap<string, ModelEndpoint> = new Map([
  ...OPENAI_PATHS.map((p): [string, ModelEndpoint] => [p, { route: p, errors: 'openai' }]),
  ...OLLAMA_PATHS.map((p): [string, ModelEndpoint] => [p, { route: p, errors: 'ollama' }]),
]);

/** The model endpoint a request target (path, optional query) names, or undefined. */
export function modelEndpoint(url: string | undefined): ModelEndpoint | undefined {
  if (url === undefined) return undefined;
  const q = url.indexOf('?');
  return ENDPOINTS.get(q === -1 ? url : url.slice(0, q));
}

/** Every model endpoint path, OpenAI's (and Anthropic's) first. */
export const MODEL_ENDPOINT_PATHS: readonly string[] = [...OPENAI_PATHS, ...OLLAMA_PATHS];
