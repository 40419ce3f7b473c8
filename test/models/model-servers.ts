/** The fake model server fixture (test/fixtures/model-server.mjs) as a `process` service, and a chat client for it. */
import assert from 'node:assert/strict';
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

/** POST /v1/chat/completions on the gateway at `base` for `model`. */
export function chat(base: string, model: string, content = 'hi'): Promise<Response> {
  return fetch(`${base}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }] }),
  });
}

/** A chat answer's text, asserting a 200 (its body in the message otherwise). */
export async function answer(res: Response): Promise<string | undefined> {
  assert.equal(res.status, 200, await res.clone().text());
  return ((await res.json()) as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content;
}

/** The rest of a streamed body, read to its end, as text. */
export async function readRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  let out = '';
  for (;;) {
    const r = await reader.read();
    if (r.done) return out;
    out += new TextDecoder().decode(r.value);
  }
}
