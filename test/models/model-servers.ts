/** The fake model server fixture (test/fixtures/model-server.mjs) as a `process` service. */
import { fileURLToPath } from 'node:url';

export const MODEL_SERVER = fileURLToPath(new URL('../fixtures/model-server.mjs', import.meta.url));

/** A process service running the fake model server as `name` on `port`. */
export function modelService(name: string, port: number, models: string[], extra: Record<string, unknown> = {}) {
  return {
    base_url: `http://127.0.0.1:${port}`,
    health_url: `http://127.0.0.1:${port}/health`,
    health_interval_ms: 20,
    start_timeout_ms: 20_000,
    models,
    launcher: {
      type: 'process',
      command: [process.execPath, MODEL_SERVER, '--port', '{port}', '--name', name],
      stop_timeout_ms: 3_000,
    },
    ...extra,
  };
}
