/** The registry maps each remote launcher type to its factory (not the "not available" stub). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLauncher } from '../../src/launchers/launcher-factories.ts';
import { launchCtx, testConfig } from '../helpers/launchers.ts';

test('ssh, docker, slurm, semaphore and http configs get their own launchers', async () => {
  const config = testConfig({
    semaphore_base_url: 'http://127.0.0.1:9',
    services: {
      s: { base_url: 'http://127.0.0.1:1', launcher: { type: 'ssh', command: 'true' } },
      d: { base_url: 'http://127.0.0.1:2', launcher: { type: 'docker', container: 'c', socket: '/nonexistent.sock' } },
      j: {
        base_url: 'http://127.0.0.1:3',
        launcher: { type: 'slurm', command: 'true', env: { SLURM_CONF: '/nonexistent/slurm.conf' }, timeout_ms: 1000 },
      },
      a: { base_url: 'http://127.0.0.1:4', semaphore_enabled: true, semaphore_machine_id: 'vm' },
      h: { base_url: 'http://127.0.0.1:5', launcher: { type: 'http', start_url: 'http://127.0.0.1:6/start' } },
    },
  });
  const types: Record<string, string> = { s: 'ssh', d: 'docker', j: 'slurm', a: 'semaphore', h: 'http' };
  for (const [id, type] of Object.entries(types)) {
    const l = createLauncher(config.services[id]!.launcher, { serviceId: id, config, log: launchCtx(id).log });
    assert.equal(l.type, type);
    // Nothing answers at these addresses (and sbatch without a config would spend ~60 s on
    // configless DNS lookups, hence timeout_ms), so each start fails, but in the launcher's own way,
    // not with the registry's "not available in this build".
    await assert.rejects(l.start(launchCtx(id)), (e: Error) => {
      assert.doesNotMatch(e.message, /not available in this build/, type);
      return true;
    });
    await l.close?.();
  }
  const automation = createLauncher(config.services.a!.launcher, { serviceId: 'a', config, log: launchCtx('a').log });
  assert.deepEqual(automation.statusInfo?.(), {
    enabled: true,
    provider: 'semaphore',
    machine_id: 'vm',
    current_task: null,
    last_task: null,
  });
});
