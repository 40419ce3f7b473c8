/**
 * The built-in configuration served when there is no config file: the original's `ollama`
 * service plus a bundled `demo` service, launched by the `process` launcher, so a newcomer
 * sees a real cold start and an idle stop within a minute of `npm start`.
 */
import { fileURLToPath } from 'node:url';

export const BUILTIN_CONFIG_NAME = '<built-in defaults>';

/** The demo upstream: a tiny HTTP server shipped in examples/demo-service.mjs. */
export const DEMO_SERVICE_SCRIPT = fileURLToPath(new URL('../../examples/demo-service.mjs', import.meta.url));

export function builtinServices(): Record<string, unknown> {
  return {
    demo: {
      base_url: 'http://127.0.0.1:18181',
      health_url: 'http://127.0.0.1:18181/health',
      idle_timeout_ms: 30_000,
      request_timeout_seconds: 30,
      start_timeout_ms: 15_000,
      launcher: {
        type: 'process',
        command: [process.execPath, DEMO_SERVICE_SCRIPT, '--port', '{port}'],
      },
    },
  };
}
