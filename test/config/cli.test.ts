import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { load } from 'js-yaml';
import { runCli } from '../helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'hestia-cli-'));
const write = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
// Keep the developer's environment (e.g. an exported HESTIA_CONFIG_PATH) out of these runs.
const cleanEnv = { HESTIA_CONFIG_PATH: undefined, HESTIA_PORT: undefined, SEMAPHORE_API_KEY: undefined };

describe('hestia check-config', () => {
  test('prints the resolved config with secrets masked and exits 0', async () => {
    const file = write(
      'good.yml',
      'semaphore_api_key: sk-very-secret\nsemaphore_password: hunter2\nservices:\n  a:\n    base_url: http://a:1\n    launcher:\n      type: http\n      start_url: http://ctl/start\n      headers: { Authorization: Bearer tok-123 }\n',
    );
    const r = await runCli(['check-config', file], { env: cleanEnv });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes('sk-very-secret') && !r.stdout.includes('hunter2') && !r.stdout.includes('tok-123'));
    const printed = load(r.stdout) as Record<string, unknown> & { services: Record<string, { queue_size: number }> };
    assert.equal(printed.semaphore_api_key, '***');
    assert.equal(printed.services.a!.queue_size, 100, 'defaults are filled in');
    assert.match(r.stderr, /config OK/);
  });

  test('masks URL userinfo, token query values, secret-named env values and http launcher headers/body', async () => {
    const file = write(
      'secrets.yml',
      [
        'services:',
        '  llm:',
        '    base_url: http://llm-user:url-pw@127.0.0.1:1/?api_token=query-tok',
        '    launcher:',
        '      type: process',
        '      command: [server]',
        '      env: { HF_TOKEN: hf-tok, CUDA_VISIBLE_DEVICES: "0" }',
        '  hook:',
        '    base_url: http://127.0.0.1:2',
        '    launcher:',
        '      type: http',
        '      start_url: http://ctl/start?token=start-tok',
        '      headers: { X-Api-Token: hdr-tok }',
        '      body: { password: body-pw, action: start }',
      ].join('\n'),
    );
    const r = await runCli(['check-config', file], { env: cleanEnv });
    assert.equal(r.code, 0, r.stderr);
    for (const s of ['url-pw', 'query-tok', 'hf-tok', 'start-tok', 'hdr-tok', 'body-pw'])
      assert.ok(!r.stdout.includes(s), `${s} printed:\n${r.stdout}`);
    const printed = load(r.stdout) as {
      services: Record<string, { base_url: string; launcher: { env?: object; body?: object } }>;
    };
    assert.equal(printed.services.llm!.base_url, 'http://llm-user:***@127.0.0.1:1/?api_token=***');
    assert.deepEqual(printed.services.llm!.launcher.env, { HF_TOKEN: '***', CUDA_VISIBLE_DEVICES: '0' });
    assert.deepEqual(printed.services.hook!.launcher.body, { password: '***', action: 'start' });
  });

  test('exits 1 with the file, key path and problem on an invalid config', async () => {
    const file = write('bad.yml', 'services:\n  comfyui:\n    base_url: http://localhost:8188\n    queue_size: 0\n');
    const r = await runCli(['check-config', file], { env: cleanEnv });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: services\\.comfyui\\.queue_size: must be >= 1, got 0`,
      ),
    );
    assert.equal(r.stdout, '');
  });

  test('a hard error and a typo: every problem at once, the typo with its suggestion, the type expected', async () => {
    const file = write(
      'typos.yml',
      'services:\n  a:\n    base_url: http://a:1\n    idle_timout_ms: 600000\n    launcher: { type: process, command: 42 }\n',
    );
    const r = await runCli(['check-config', file], { env: cleanEnv });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid configuration \(1 problem, 1 warning\)/);
    assert.match(
      r.stderr,
      /services\.a\.launcher\.command: must be a string \(run by \/bin\/sh -c\) or a list of strings \(argv\), got 42/,
    );
    assert.match(
      r.stderr,
      /warning: .*services\.a\.idle_timout_ms: unknown key \(ignored\); did you mean idle_timeout_ms\?/,
    );
    assert.doesNotMatch(r.stderr, /Invalid input/);
  });

  test('server.strict_config: true: an unknown key fails check-config (exit 1)', async () => {
    const file = write(
      'strict.yml',
      'server:\n  strict_config: true\nservices:\n  a:\n    base_url: http://a:1\n    idle_timout_ms: 1\n',
    );
    const r = await runCli(['check-config', file], { env: cleanEnv });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /services\.a\.idle_timout_ms: unknown key; did you mean idle_timeout_ms\? \(server\.strict_config is true\)/,
    );
  });

  test('an explicitly named missing file is an error', async () => {
    const r = await runCli(['check-config', join(dir, 'nope.yml')], { env: cleanEnv });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /nope\.yml: config file not found/);
  });

  test('HESTIA_CONFIG_PATH pointing at a missing file is an error too', async () => {
    const r = await runCli(['check-config'], { env: { ...cleanEnv, HESTIA_CONFIG_PATH: join(dir, 'gone.yml') } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /gone\.yml: config file not found \(from HESTIA_CONFIG_PATH\)/);
  });

  test('without any config file the built-in defaults (ollama + demo) are used, with a warning', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'hestia-cwd-'));
    const r = await runCli(['check-config'], { env: cleanEnv, cwd: empty });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /no config file at .*hestia_config\.yml; serving built-in defaults/);
    const printed = load(r.stdout) as { services: Record<string, unknown> };
    assert.deepEqual(Object.keys(printed.services).sort(), ['demo', 'ollama']);
  });

  test('an environment variable with a malformed number is named', async () => {
    const file = write('env.yml', 'services:\n  my-svc:\n    base_url: http://a:1\n');
    const r = await runCli(['check-config', file], { env: { ...cleanEnv, MY_SVC_IDLE_TIMEOUT_MS: '5m' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /MY_SVC_IDLE_TIMEOUT_MS: must be a number, got "5m"/);
  });
});

describe('hestia serve with a bad config', () => {
  test('exits 1 before listening', async () => {
    const file = write('serve-bad.yml', 'services:\n  a:\n    base_url: http://a\n    warmup_ms: -5\n');
    const r = await runCli(['serve', '--config', file], { env: { ...cleanEnv, HESTIA_PORT: '1' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /services\.a\.warmup_ms: must be >= 0, got -5/);
    assert.ok(!r.stdout.includes('listening'), 'never listened');
  });
});
