/** `machines.<id>.agent` (SPEC §15): url + token (or `<MACHINE>_AGENT_TOKEN`), and where a process launcher may run. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { dump } from 'js-yaml';
import { maskSecrets } from '../../src/config/mask.ts';
import { resolveConfig } from '../../src/config/resolve.ts';

const cfg = (agent: Record<string, unknown> | undefined, machine = 'gpu-box') =>
  dump({
    machines: { [machine]: { host: '10.0.0.5', ...(agent ? { agent } : {}) } },
    services: {
      llm: {
        base_url: 'http://{host}:8081',
        machines: [machine],
        launcher: { type: 'process', command: ['./serve', '--port', '{port}'] },
      },
    },
  });

test('a process launcher may run on a machine with an agent; the token may come from <MACHINE>_AGENT_TOKEN', () => {
  const r = resolveConfig(cfg({ url: 'https://gpu-box:8090' }), { GPU_BOX_AGENT_TOKEN: 's3cret' });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
  assert.equal(r.ok && r.config.machines['gpu-box']?.agent?.token, 's3cret');
  assert.doesNotMatch(JSON.stringify(maskSecrets(r.ok ? r.config : {})), /s3cret/);
});

test('an agent without a token says where to put one', () => {
  const r = resolveConfig(cfg({ url: 'https://gpu-box:8090' }), {});
  assert.equal(r.ok, false);
  assert.match(JSON.stringify(!r.ok && r.issues), /machines\.gpu-box\.agent\.token.*_AGENT_TOKEN/);
});

test('without an agent, a process launcher placed elsewhere is still an error that mentions agents', () => {
  const r = resolveConfig(cfg(undefined), {});
  assert.equal(r.ok, false);
  assert.match(JSON.stringify(!r.ok && r.issues), /give those machines an `agent`/);
});

test('the worked example of docs/agent.md is a valid config', () => {
  const doc = readFileSync(fileURLToPath(new URL('../../docs/agent.md', import.meta.url)), 'utf8');
  const blocks = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  const example = blocks.find((b) => b.includes('llama-70b'));
  assert.ok(example);
  const r = resolveConfig(example, { GPU_BOX_AGENT_TOKEN: 'x' });
  assert.ok(r.ok, JSON.stringify(!r.ok && r.issues));
});
