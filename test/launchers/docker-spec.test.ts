/** Pure pieces of the docker launcher: the create body and Docker's multiplexed log frames. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dockerLauncherSchema } from '../../src/config/schema.ts';
import { createSpec, demuxLogs } from '../../src/launchers/docker/index.ts';

const vars = { host: '10.0.0.5', machine: 'gpu', port: '8081', service: 'llm' };

test('createSpec: host network and Init by default, templates in cmd and env, no ulimits unless set', () => {
  const cfg = dockerLauncherSchema.parse({
    type: 'docker',
    container: 'llm',
    create: { image: 'ollama/ollama:latest', cmd: ['serve', '--port', '{port}'], env: { HOST_IP: '{host}' } },
  });
  assert.deepEqual(createSpec(cfg.create!, vars), {
    Image: 'ollama/ollama:latest',
    Cmd: ['serve', '--port', '8081'],
    Env: ['HOST_IP=10.0.0.5'],
    Labels: { 'hestia.service': 'llm' },
    HostConfig: { NetworkMode: 'host', Init: true },
  });
});

test('createSpec: ulimits become soft = hard HostConfig.Ulimits; init and network_mode are configurable', () => {
  const cfg = dockerLauncherSchema.parse({
    type: 'docker',
    container: 'x',
    create: { image: 'i', init: false, network_mode: 'bridge', ulimits: { nofile: 4096, nproc: 4096 } },
  });
  const spec = createSpec(cfg.create!, vars) as { Cmd?: unknown; HostConfig: Record<string, unknown> };
  assert.equal(spec.Cmd, undefined, 'no cmd: the image default runs');
  assert.deepEqual(spec.HostConfig, {
    NetworkMode: 'bridge',
    Init: false,
    Ulimits: [
      { Name: 'nofile', Soft: 4096, Hard: 4096 },
      { Name: 'nproc', Soft: 4096, Hard: 4096 },
    ],
  });
});

test('demuxLogs joins stdout/stderr frames, and passes a TTY (raw) log through', () => {
  const frame = (type: number, s: string) => {
    const payload = Buffer.from(s);
    const h = Buffer.alloc(8);
    h[0] = type;
    h.writeUInt32BE(payload.length, 4);
    return Buffer.concat([h, payload]);
  };
  assert.equal(demuxLogs(Buffer.concat([frame(1, 'out\n'), frame(2, 'err\n')])), 'out\nerr\n');
  assert.equal(demuxLogs(Buffer.from('plain tty output\n')), 'plain tty output\n');
});
