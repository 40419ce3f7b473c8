/**
 * `hestia agent --tls-cert/--tls-key` (SPEC §15): HTTPS, and the gateway's client trusting the
 * agent through `ca_file` (a self-signed certificate made with openssl for 127.0.0.1).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AgentClient, type AgentError } from '../../src/remote/agent/client.ts';
import { type ChildAgent, spawnAgent } from '../helpers/agent.ts';
import { tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';

const tmp = tempDir();
let agent: ChildAgent | undefined;
after(() => {
  agent?.kill();
  tmp.cleanup();
});

test('HTTPS with a private CA: trusted through ca_file, refused without it', async () => {
  const cert = tmp.path('cert.pem');
  const key = tmp.path('key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  mkdirSync(join(tmp.dir, 'a'));
  agent = await spawnAgent({
    port: await freePort(),
    stateDir: join(tmp.dir, 'a', 'state'),
    token: 'tls-token-0123456789',
    extraArgs: ['--tls-cert', cert, '--tls-key', key],
  });
  assert.match(agent.url, /^https:\/\//);
  const trusted = new AgentClient({ url: agent.url, token: 'tls-token-0123456789', ca_file: cert });
  assert.equal((await trusted.health()).ok, true);
  const untrusted = new AgentClient({ url: agent.url, token: 'tls-token-0123456789' });
  await assert.rejects(
    untrusted.health(),
    (e: AgentError) => e.kind === 'unreachable' && /CERT|certificate|SELF_SIGNED/i.test(e.message),
  );
  await trusted.close();
  await untrusted.close();
});
