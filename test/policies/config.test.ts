/**
 * Config rules of the lifecycle policies: a dependency cycle is an error naming its whole path
 * (check-config and serve exit 1), an unknown `depends_on` id suggests the closest one, a
 * malformed keep-warm window says what is wrong, and `stop_mode: pause` needs a launcher that
 * can pause.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { resolveConfig } from '../../src/config/resolve.ts';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/lifecycle.ts';

const tmp = tempDir();
after(() => tmp.cleanup());

const CYCLE = `
services:
  web:
    base_url: http://127.0.0.1:9001
    depends_on: [api]
  api:
    base_url: http://127.0.0.1:9002
    depends_on: [db]
  db:
    base_url: http://127.0.0.1:9003
    depends_on: [web]
`;

function issues(yaml: string): string[] {
  const r = resolveConfig(yaml, {}, { file: 'h.yml' });
  assert.equal(r.ok, false, 'the config must be refused');
  return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
}

test('a dependency cycle is a config error naming the path of the cycle', () => {
  assert.deepEqual(issues(CYCLE), ['services.web.depends_on: dependency cycle: web -> api -> db -> web']);
  assert.deepEqual(issues('services:\n  a: {base_url: "http://h:1", depends_on: [a]}\n'), [
    'services.a.depends_on.0: a service cannot depend on itself',
  ]);
});

test('check-config and serve exit 1 on a cycle, naming it; nothing listens', async () => {
  const file = tmp.path('cycle.yml');
  writeFileSync(file, CYCLE);
  const check = await runCli(['check-config', file]);
  assert.equal(check.code, 1);
  assert.match(check.stderr, /services\.web\.depends_on: dependency cycle: web -> api -> db -> web/);
  const serve = await runCli(['serve'], { env: { HESTIA_CONFIG_PATH: file, HESTIA_PORT: '0' } });
  assert.equal(serve.code, 1);
  assert.match(serve.stderr + serve.stdout, /dependency cycle: web -> api -> db -> web/);
});

test('an unknown depends_on id is an error with the closest id', () => {
  const out = issues(`
services:
  web: {base_url: "http://h:1", depends_on: [postgress]}
  postgres: {base_url: "http://h:2"}
`);
  assert.deepEqual(out, ["services.web.depends_on.0: unknown service 'postgress'; did you mean postgres?"]);
});

test('a malformed keep-warm window says what is wrong and how to write it', () => {
  const out = issues(`
services:
  a: {base_url: "http://h:1", keep_warm: ["Mon-Fri 8-18", "Mon-Fry 08:00-18:00", "Mon 25:00-26:00", "Mon 08:00-08:00"]}
`);
  assert.equal(out.length, 4, out.join('\n'));
  assert.match(
    out[0]!,
    /^services\.a\.keep_warm\.0: is not a keep-warm window: "Mon-Fri 8-18"; expected "\[DAYS \]HH:MM-HH:MM"/,
  );
  assert.match(out[1]!, /^services\.a\.keep_warm\.1: has bad days .*'Fry' is not a day/);
  assert.match(out[2]!, /^services\.a\.keep_warm\.2: has an invalid start time '25:00'/);
  assert.match(out[3]!, /^services\.a\.keep_warm\.3: is empty/);
});

test('stop_mode: pause needs a process or docker launcher', () => {
  assert.deepEqual(issues('services:\n  a: {base_url: "http://h:1", stop_mode: pause}\n'), [
    "services.a.stop_mode: is 'pause' but the none launcher cannot pause; pause needs a process or docker launcher",
  ]);
  assert.deepEqual(issues('services:\n  a: {base_url: "http://h:1", stop_mode: freeze}\n'), [
    "services.a.stop_mode: must be 'stop' or 'pause'",
  ]);
  const ok = resolveConfig(
    'services:\n  a: {base_url: "http://h:1", stop_mode: pause, launcher: {type: process, command: [x]}}\n',
    {},
  );
  assert.equal(ok.ok, true);
});

test('the policy fields have their defaults, and preload/group/stop_mode come from the environment too', () => {
  const r = resolveConfig('services:\n  a: {base_url: "http://h:1"}\n', {
    A_PRELOAD: 'yes',
    A_GROUP: 'comfy',
  });
  assert.ok(r.ok);
  const a = r.config.services.a!;
  assert.equal(a.preload, true);
  assert.equal(a.group, 'comfy');
  assert.deepEqual(a.keep_warm, []);
  assert.deepEqual(a.depends_on, []);
  assert.equal(a.stop_mode, 'stop');
});
