/** `hestia` command dispatch, in-process (src/cli/main.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runCli } from '../helpers/cli.ts';

test('`help` exits 0 with the usage on stdout; an unknown command exits 2 with it on stderr', async () => {
  const help = await runCli(['help']);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^usage: hestia \[serve\]/);
  const unknown = await runCli(['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^hestia: unknown command 'frobnicate'\nusage: hestia/);
  assert.equal(unknown.stdout, '');
});
