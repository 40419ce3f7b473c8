/**
 * `capacity: {gpu_mem_mb: auto}` (SPEC §15) from a real agent's resource report. This machine
 * has no GPU: the agent runs a stand-in `nvidia-smi` on its PATH that prints one GPU in the
 * real `--format=csv,noheader,nounits` format (4000 MiB used of 24000).
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ChildAgent, spawnAgent } from '../helpers/agent.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { fixtureService, readPids, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';

const TOKEN = 'capacity-token-0123456789';

describe('gpu_mem_mb: auto from the agent', () => {
  const tmp = tempDir();
  let agent: ChildAgent;
  let gw: TestGateway;
  const pidFile = tmp.path('pids');

  before(async () => {
    const bin = join(tmp.dir, 'bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'nvidia-smi'), '#!/bin/sh\necho "0, Fake GPU 24G, 4000, 24000"\n');
    chmodSync(join(bin, 'nvidia-smi'), 0o755);
    mkdirSync(join(tmp.dir, 'a'));
    agent = await spawnAgent({
      port: await freePort(),
      stateDir: join(tmp.dir, 'a', 'state'),
      token: TOKEN,
      env: { PATH: `${bin}:${process.env.PATH}` },
    });
    gw = await startTestGateway({
      machines: {
        gpu: { host: '127.0.0.1', agent: { url: agent.url, token: TOKEN }, capacity: { gpu_mem_mb: 'auto' } },
      },
      services: {
        big: fixtureService(await freePort(), [], {
          machines: ['gpu'],
          requires: { gpu_mem_mb: 30000 },
          capacity_wait_ms: 0,
        }),
        fits: fixtureService(await freePort(), ['--record-pid', pidFile], {
          machines: ['gpu'],
          requires: { gpu_mem_mb: 16000 },
        }),
      },
    });
  });
  after(async () => {
    await gw?.close();
    agent?.kill();
    for (const pid of readPids(pidFile)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    tmp.cleanup();
  });

  test('a service larger than the reported free memory does not start there', async () => {
    const r = await fetch(`${gw.url}/services/big/health`);
    assert.equal(r.status, 503);
    assert.match(await r.text(), /gpu_mem_mb/);
    assert.equal(readPids(pidFile).length, 0);
  });

  test('one that fits starts; /v1/machines shows the live report and the auto capacity', async () => {
    assert.equal((await fetch(`${gw.url}/services/fits/health`)).status, 200);
    const body = (await (await fetch(`${gw.url}/v1/machines`)).json()) as {
      machines: Array<{
        id: string;
        capacity: Record<string, number>;
        free: Record<string, number>;
        resources?: { report: { gpus: Array<{ name: string; memoryTotalMb: number }>; cpus: number } | null };
      }>;
    };
    const m = body.machines.find((x) => x.id === 'gpu');
    assert.ok(m?.resources?.report, 'the agent’s last report is listed');
    assert.equal(m.resources.report.gpus[0]?.name, 'Fake GPU 24G');
    assert.ok(m.resources.report.cpus >= 1);
    // Reported free 20000 + what the hot `fits` holds (already in "used" on a real GPU) = 36000;
    // free for the next start = 36000 − 16000 held = the reported 20000.
    assert.equal(m.capacity.gpu_mem_mb, 36000);
    assert.equal(m.free.gpu_mem_mb, 20000);
  });
});
