import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type ConfigIssue, formatIssue, resolveConfig } from '../../src/config/resolve.ts';
import type { Config } from '../../src/config/schema.ts';

/** The original Python Hestia's full example configuration, kept verbatim in the repository. */
const ORIGINAL = fileURLToPath(new URL('../fixtures/compat/hestia_config.original.yml', import.meta.url));

function ok(text: string, env: Record<string, string> = {}): { config: Config; warnings: string[]; notes: string[] } {
  const r = resolveConfig(text, env, { file: 'hestia_config.yml' });
  if (!r.ok) assert.fail(`expected a valid config, got: ${r.issues.map(formatIssue).join('; ')}`);
  return r;
}
function bad(text: string, env: Record<string, string> = {}): ConfigIssue[] {
  const r = resolveConfig(text, env, { file: 'hestia_config.yml' });
  assert.equal(r.ok, false, 'expected the config to be rejected');
  return r.ok ? [] : r.issues;
}
const messages = (issues: ConfigIssue[]) => issues.map(formatIssue);

describe('the original Python Hestia example file', () => {
  const text = readFileSync(ORIGINAL, 'utf8');

  test('loads unchanged with every service and field', () => {
    const { config, warnings } = ok(text);
    assert.deepEqual(warnings, [], 'no field of the original is unknown');
    const ids = Object.keys(config.services);
    for (const id of [
      'ollama',
      'open-webui',
      'comfyui',
      'postgres',
      'cloud-ollama',
      'gpu-stable-diffusion',
      'global-api',
    ])
      assert.ok(ids.includes(id), `service ${id} present`);
    const comfy = config.services.comfyui!;
    assert.equal(comfy.base_url, 'http://localhost:8188');
    assert.equal(comfy.health_url, 'http://localhost:8188/system_stats');
    assert.equal(comfy.queue_size, 20);
    assert.equal(comfy.request_timeout_seconds, 120);
    assert.equal(comfy.idle_timeout_ms, 900000);
    assert.equal(config.services.postgres!.fallback_url, 'http://postgres-replica:3001');
    assert.equal(config.services.ollama!.fallback_url, null);
    assert.equal(config.semaphore_base_url, 'http://localhost:3000');
    assert.equal(config.semaphore_timeout, 30);
  });

  test('semaphore_enabled services get the semaphore launcher with their template ids', () => {
    const { config } = ok(text);
    const gpu = config.services['gpu-stable-diffusion']!;
    assert.equal(gpu.launcher?.type, 'semaphore');
    assert.equal(gpu.semaphore_machine_id, 'gpu-server-01');
    assert.equal(gpu.semaphore_start_template_id, 3);
    assert.equal(gpu.semaphore_stop_template_id, 4);
    assert.equal(gpu.semaphore_poll_interval, 5.0);
    // semaphore_enabled: false keeps the default launcher (none)
    assert.equal(config.services.semaphore!.launcher, undefined);
  });
});

describe('defaults', () => {
  test('an empty file yields the ollama service at localhost:11434 with the original defaults', () => {
    const { config } = ok('');
    const o = config.services.ollama!;
    assert.equal(o.base_url, 'http://localhost:11434');
    assert.equal(o.warmup_ms, 0);
    assert.equal(o.idle_timeout_ms, 0);
    assert.equal(o.retry_count, 1);
    assert.equal(o.retry_delay_ms, 0);
    assert.equal(o.queue_size, 100);
    assert.equal(o.request_timeout_seconds, 60);
    assert.equal(o.health_interval_ms, 250);
    assert.equal(o.start_timeout_ms, 120000);
    assert.equal(config.server.host, '127.0.0.1');
    assert.equal(config.server.port, 8080);
    assert.equal(config.server.db_path, './data/hestia.db');
    assert.equal(config.auth.enabled, false);
  });

  test('a file that defines ollama differently wins', () => {
    const { config } = ok('services:\n  ollama:\n    base_url: http://gpu:11434\n');
    assert.equal(config.services.ollama!.base_url, 'http://gpu:11434');
  });

  test('an empty service entry is an error naming the missing base_url', () => {
    assert.deepEqual(messages(bad('services:\n  foo:\n')), ['hestia_config.yml: services.foo.base_url: is required']);
  });
});

describe('environment overrides', () => {
  const file = 'services:\n  my-service:\n    base_url: http://a:1\n  x:\n    base_url: http://x:1\n';

  test('<ID>_<FIELD> with the id upper-cased and - → _', () => {
    const { config } = ok(file, { MY_SERVICE_IDLE_TIMEOUT_MS: '600000', MY_SERVICE_BASE_URL: 'http://b:2' });
    assert.equal(config.services['my-service']!.idle_timeout_ms, 600000);
    assert.equal(config.services['my-service']!.base_url, 'http://b:2');
  });

  test('the longest field suffix wins: X_SEMAPHORE_ENABLED is semaphore_enabled of x', () => {
    const { config } = ok(file, { X_SEMAPHORE_ENABLED: 'true', X_SEMAPHORE_MACHINE_ID: 'vm-1' });
    assert.equal(config.services.x!.semaphore_enabled, true);
    assert.equal(config.services.x!.semaphore_machine_id, 'vm-1');
    assert.equal(config.services.x!.launcher?.type, 'semaphore');
  });

  test('environment wins over the file', () => {
    const { config } = ok('services:\n  x:\n    base_url: http://x:1\n    queue_size: 5\n', { X_QUEUE_SIZE: '7' });
    assert.equal(config.services.x!.queue_size, 7);
  });

  test('<ID>_BASE_URL for an unknown id defines a new service (lower-cased, _ → -) and its other variables apply', () => {
    const { config, notes } = ok('', {
      MY_NEW_API_BASE_URL: 'http://n:9',
      MY_NEW_API_QUEUE_SIZE: '3',
      MY_NEW_API_SEMAPHORE_ENABLED: 'yes',
      MY_NEW_API_SEMAPHORE_MACHINE_ID: 'm',
    });
    const svc = config.services['my-new-api'];
    assert.ok(svc, 'service my-new-api defined');
    assert.equal(svc.base_url, 'http://n:9');
    assert.equal(svc.queue_size, 3);
    assert.equal(svc.semaphore_enabled, true);
    assert.ok(notes.some((n) => n.includes('my-new-api') && n.includes('MY_NEW_API_BASE_URL')));
  });

  test('variables for ids that do not exist (and no BASE_URL) are ignored', () => {
    const { config } = ok('', { OTHER_TOOL_QUEUE_SIZE: 'nonsense', PATH: '/usr/bin' });
    assert.deepEqual(Object.keys(config.services), ['ollama']);
  });

  for (const [raw, value] of [
    ['true', true],
    ['1', true],
    ['yes', true],
    ['ON', true],
    ['false', false],
    ['0', false],
    ['no', false],
    ['off', false],
  ] as const) {
    test(`boolean ${JSON.stringify(raw)} → ${value}`, () => {
      const { config } = ok(file, { X_WAITING_PAGE: raw });
      assert.equal(config.services.x!.waiting_page, value);
    });
  }

  test('a malformed boolean is an error naming the variable', () => {
    const m = messages(bad(file, { X_WAITING_PAGE: 'maybe' }));
    assert.equal(m.length, 1);
    assert.match(m[0]!, /X_WAITING_PAGE: must be a boolean/);
    assert.match(m[0]!, /services\.x\.waiting_page/);
  });

  test('a malformed number is an error naming the variable', () => {
    const m = messages(bad(file, { MY_SERVICE_QUEUE_SIZE: '12abc' }));
    assert.equal(m.length, 1);
    assert.match(m[0]!, /MY_SERVICE_QUEUE_SIZE: must be a number, got "12abc"/);
  });

  test('a number that breaks a rule names the key', () => {
    const m = messages(bad(file, { X_QUEUE_SIZE: '0' }));
    assert.deepEqual(m, ['hestia_config.yml: services.x.queue_size: must be >= 1, got 0']);
  });

  test('nullable fields accept an empty value as "unset"', () => {
    const { config } = ok('services:\n  x:\n    base_url: http://x:1\n    fallback_url: http://f:1\n', {
      X_FALLBACK_URL: '',
    });
    assert.equal(config.services.x!.fallback_url, null);
  });

  test('HESTIA_* settings set the server, never a service', () => {
    const { config } = ok('services:\n  hestia:\n    base_url: http://h:1\n', {
      HESTIA_HOST: '0.0.0.0',
      HESTIA_PORT: '9090',
      HESTIA_DB_PATH: '/tmp/x.db',
      HESTIA_LOG_LEVEL: 'debug',
      HESTIA_AUTH_ENABLED: 'on',
    });
    assert.equal(config.server.host, '0.0.0.0');
    assert.equal(config.server.port, 9090);
    assert.equal(config.server.db_path, '/tmp/x.db');
    assert.equal(config.server.log_level, 'debug');
    assert.equal(config.auth.enabled, true);
    assert.equal(config.services.hestia!.base_url, 'http://h:1');
  });

  test('HESTIA_PORT that is not a number names the variable', () => {
    assert.match(messages(bad('', { HESTIA_PORT: 'eighty' }))[0]!, /HESTIA_PORT: must be a number/);
  });

  test('SEMAPHORE_* globals set the global settings and do not retarget a service named semaphore', () => {
    const { config } = ok('services:\n  semaphore:\n    base_url: http://localhost:3000\n', {
      SEMAPHORE_BASE_URL: 'http://sem:3000',
      SEMAPHORE_API_KEY: 'k',
      SEMAPHORE_TIMEOUT: '12',
    });
    assert.equal(config.semaphore_base_url, 'http://sem:3000');
    assert.equal(config.semaphore_api_key, 'k');
    assert.equal(config.semaphore_timeout, 12);
    assert.equal(config.services.semaphore!.base_url, 'http://localhost:3000');
  });
});

describe('validation', () => {
  test('names the file, the key path and the problem', () => {
    const m = messages(bad('services:\n  comfyui:\n    base_url: http://localhost:8188\n    queue_size: 0\n'));
    assert.deepEqual(m, ['hestia_config.yml: services.comfyui.queue_size: must be >= 1, got 0']);
  });

  test('reports every problem at once', () => {
    const issues = bad(
      [
        'services:',
        '  a:',
        '    base_url: ftp://nope',
        '    warmup_ms: -1',
        '    request_timeout_seconds: 0',
        '    retry_count: "three"',
        '    launcher: { type: rocket }',
        '  b:',
        '    base_url: http://b',
        '    semaphore_enabled: true',
      ].join('\n'),
    );
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i.message]));
    assert.match(byPath['services.a.base_url']!, /must be an http:\/\/ or https:\/\/ URL, got "ftp:\/\/nope"/);
    assert.equal(byPath['services.a.warmup_ms'], 'must be >= 0, got -1');
    assert.equal(byPath['services.a.request_timeout_seconds'], 'must be >= 1, got 0');
    assert.equal(byPath['services.a.retry_count'], 'must be a whole number, got "three"');
    assert.match(byPath['services.a.launcher.type']!, /must be one of: none, process/);
    assert.equal(byPath['services.b.semaphore_machine_id'], 'is required when semaphore_enabled is true');
  });

  test('malformed YAML names the line and column', () => {
    const m = messages(bad('services:\n  a: [1,\n'));
    assert.equal(m.length, 1);
    assert.match(m[0]!, /^hestia_config\.yml: invalid YAML: line \d+, column \d+: /);
  });

  test('a key given twice names the line and column of the second one', () => {
    const text =
      'services:\n  a:\n    base_url: http://a\n  b:\n    base_url: http://b\n  a:\n    base_url: http://c\n';
    assert.deepEqual(messages(bad(text)), [
      'hestia_config.yml: invalid YAML: line 6, column 3: duplicated mapping key',
    ]);
  });

  test('a second document, or an unknown tag, is an error; a comment-only file is an empty config', () => {
    assert.match(messages(bad('services: {}\n---\nserver: {}\n'))[0]!, /invalid YAML: 2 documents/);
    assert.match(messages(bad('services:\n  a: !custom x\n'))[0]!, /invalid YAML: line 2, column 6: unknown/);
    const { config } = ok('# nothing here yet\n');
    assert.deepEqual(Object.keys(config.services), ['ollama']);
  });

  test('YAML 1.2 core: yes/no are strings, anchors work, << is an unknown key', () => {
    const { config, warnings } = ok(
      [
        'services:',
        '  a: &svc',
        '    base_url: http://a:1',
        '    idle_timeout_ms: 0x10',
        '  b: *svc',
        '  c:',
        '    <<: *svc',
        '    base_url: http://c:1',
        'webhooks:',
        '  - url: http://hook',
        '    events: [service_ready]',
        '    headers: { X-Flag: yes }',
      ].join('\n'),
    );
    assert.equal(config.services.a!.idle_timeout_ms, 16);
    assert.equal(config.services.b!.base_url, 'http://a:1');
    assert.equal(config.services.c!.idle_timeout_ms, 0, 'the merge key did not merge');
    assert.deepEqual(config.webhooks[0]!.headers, { 'X-Flag': 'yes' });
    assert.deepEqual(warnings, ['hestia_config.yml: services.c.<<: unknown key (ignored)']);
  });

  test('an alias is a copy: an environment override of one service leaves the anchored one alone', () => {
    const { config } = ok('services:\n  a: &svc\n    base_url: http://a:1\n  b: *svc\n', {
      B_BASE_URL: 'http://b:2',
    });
    assert.equal(config.services.a!.base_url, 'http://a:1');
    assert.equal(config.services.b!.base_url, 'http://b:2');
  });

  test('aliases that expand to millions of values are refused, not expanded', () => {
    const level = (name: string, of: string) => `${name}: &${name} [${Array(10).fill(of).join(', ')}]`;
    const lines = [level('l0', 'x')];
    for (let i = 1; i <= 6; i++) lines.push(level(`l${i}`, `*l${i - 1}`));
    const m = messages(bad(`${lines.join('\n')}\nservices: {}\n`));
    assert.deepEqual(m, ['hestia_config.yml: invalid YAML: aliases expand to more than 1,000,000 values']);
    assert.deepEqual(messages(bad('a: &x\n  k: [*x]\nservices: {}\n')), [
      'hestia_config.yml: invalid YAML: an alias refers to the collection it is in',
    ]);
  });

  test('a document that is not a mapping is rejected', () => {
    assert.match(messages(bad('- a\n- b\n'))[0]!, /must be a mapping/);
  });

  test('unknown keys are warnings naming the key, and the config still loads', () => {
    const { warnings } = ok('colour: blue\nservices:\n  a:\n    base_url: http://a\n    quue_size: 3\n');
    assert.deepEqual(warnings, [
      'hestia_config.yml: colour: unknown key (ignored)',
      'hestia_config.yml: services.a.quue_size: unknown key (ignored); did you mean queue_size?',
    ]);
  });

  test('unknown keys inside a launcher are checked against that launcher type', () => {
    const { warnings } = ok(
      'services:\n  a:\n    base_url: http://a\n    launcher: { type: process, command: [x], comand: y }\n',
    );
    assert.deepEqual(warnings, [
      'hestia_config.yml: services.a.launcher.comand: unknown key (ignored); did you mean command?',
    ]);
  });

  test('URL templates with {host} and {port} are accepted', () => {
    const { config } = ok(
      'services:\n  a:\n    base_url: "http://{host}:8081"\n    health_url: "http://{host}:{port}/h"\n',
    );
    assert.equal(config.services.a!.base_url, 'http://{host}:8081');
  });

  test('a machine reference to an unknown machine is an error', () => {
    const m = messages(bad('services:\n  a:\n    base_url: http://a\n    machines: [gpu-box]\n'));
    assert.deepEqual(m, ["hestia_config.yml: services.a.machines.0: unknown machine 'gpu-box'"]);
  });
});

describe('typos and types (issue: a mistyped key silently changes behaviour)', () => {
  const typo = 'services:\n  a:\n    base_url: http://a\n    idle_timout_ms: 600000\n';

  test('a mistyped key suggests the closest known key at that place', () => {
    assert.deepEqual(ok(typo).warnings, [
      'hestia_config.yml: services.a.idle_timout_ms: unknown key (ignored); did you mean idle_timeout_ms?',
    ]);
    assert.deepEqual(ok('server:\n  Port: 9000\n').warnings, [
      'hestia_config.yml: server.Port: unknown key (ignored); did you mean port?',
    ]);
    assert.deepEqual(ok('services:\n  a:\n    base_url: http://a\n    idleTimeoutMs: 5\n').warnings, [
      'hestia_config.yml: services.a.idleTimeoutMs: unknown key (ignored); did you mean idle_timeout_ms?',
    ]);
  });

  test('server.strict_config: true makes unknown keys errors (with the suggestion); also HESTIA_STRICT_CONFIG', () => {
    const strict = `server:\n  strict_config: true\n${typo}`;
    assert.deepEqual(messages(bad(strict)), [
      'hestia_config.yml: services.a.idle_timout_ms: unknown key; did you mean idle_timeout_ms? (server.strict_config is true)',
    ]);
    assert.equal(bad(typo, { HESTIA_STRICT_CONFIG: 'true' }).length, 1);
    assert.equal(
      ok('server:\n  strict_config: true\nservices:\n  a:\n    base_url: http://a\n').config.server.strict_config,
      true,
    );
    assert.equal(ok('').config.server.strict_config, false, 'off by default');
  });

  test('the original example file loads under strict_config too (no key of it is unknown)', () => {
    const text = readFileSync(ORIGINAL, 'utf8');
    assert.equal(resolveConfig(text, { HESTIA_STRICT_CONFIG: '1' }, { file: 'x' }).ok, true);
  });

  test('with a hard error in the file, the unknown-key warnings are still returned', () => {
    const r = resolveConfig(`${typo}    queue_size: 0\n`, {}, { file: 'hestia_config.yml' });
    assert.equal(r.ok, false);
    assert.deepEqual(r.warnings, [
      'hestia_config.yml: services.a.idle_timout_ms: unknown key (ignored); did you mean idle_timeout_ms?',
    ]);
  });

  test('a value of the wrong type says what was expected, never "Invalid input"', () => {
    const m = messages(
      bad(
        [
          'services:',
          '  a:',
          '    base_url: 42',
          '    tags: web',
          '    waiting_page: "yes please"',
          '    launcher: { type: process, command: 42 }',
          '  b:',
          '    base_url: http://b',
          '    launcher: { type: process, command: [ok, 7] }',
          '    machines: { x: 1 }',
        ].join('\n'),
      ),
    );
    assert.deepEqual(m.sort(), [
      'hestia_config.yml: services.a.base_url: must be a URL string, got 42',
      'hestia_config.yml: services.a.launcher.command: must be a string (run by /bin/sh -c) or a list of strings (argv), got 42',
      'hestia_config.yml: services.a.tags: must be a list, got "web"',
      'hestia_config.yml: services.a.waiting_page: must be a boolean (true/false), got "yes please"',
      'hestia_config.yml: services.b.launcher.command: must be a string (run by /bin/sh -c) or a list of strings (argv), got a list (["ok",7])',
      'hestia_config.yml: services.b.machines: must be a list, got a mapping',
    ]);
    for (const line of m) assert.doesNotMatch(line, /Invalid input/);
  });

  test('values echoed in errors are masked', () => {
    const m = messages(bad('services:\n  a:\n    base_url: ftp://me:hunter2@h/?token=t0k\n'));
    assert.equal(m.length, 1);
    assert.doesNotMatch(m[0]!, /hunter2|t0k/);
    assert.match(m[0]!, /ftp:\/\/me:\*\*\*@h/);
  });
});
