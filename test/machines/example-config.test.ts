/**
 * examples/machines.yml (the laptop + WOL GPU box + Slurm HPC setup of docs/machines.md) stays
 * valid, without warnings, and places every service where the docs say it goes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { machineOrder } from '../../src/config/machine-order.ts';
import { resolveConfig } from '../../src/config/resolve.ts';

const FILE = fileURLToPath(new URL('../../examples/machines.yml', import.meta.url));

test('examples/machines.yml loads cleanly and places each service as documented', () => {
  const r = resolveConfig(readFileSync(FILE, 'utf8'), {}, { file: 'examples/machines.yml' });
  assert.ok(r.ok, r.ok ? '' : r.issues.map((i) => `${i.path}: ${i.message}`).join('\n'));
  assert.deepEqual(r.warnings, []);
  const { config } = r;
  const order = (id: string) => {
    const svc = config.services[id];
    assert.ok(svc, id);
    return machineOrder(svc, config).ids;
  };
  assert.deepEqual(
    Object.fromEntries(['whisper', 'chat', 'llama-70b', 'comfyui', 'llama-405b'].map((id) => [id, order(id)])),
    {
      whisper: ['local'],
      chat: ['gpu-box', 'local'],
      'llama-70b': ['gpu-box'],
      comfyui: ['gpu-box'],
      'llama-405b': ['hpc'],
    },
  );
  const box = config.machines['gpu-box'];
  assert.equal(box?.wake?.type, 'wol');
  assert.equal(box?.sleep?.type, 'ssh');
  assert.deepEqual(box?.capacity, { gpu_mem_mb: 24000 });
  // The two GPU services cannot both fit on the box: the capacity story of the docs.
  const need = (id: string) => config.services[id]?.requires.gpu_mem_mb ?? 0;
  assert.ok(need('llama-70b') + need('comfyui') > (box?.capacity.gpu_mem_mb ?? 0));
  assert.ok(need('llama-70b') <= (box?.capacity.gpu_mem_mb ?? 0) && need('comfyui') <= (box?.capacity.gpu_mem_mb ?? 0));
});
