/**
 * The semaphore launcher against a local fake of Semaphore's HTTP API
 * (test/helpers/fake-semaphore.ts, which states the endpoints and fields it mirrors).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Config } from '../../src/config/schema.ts';
import { createSemaphoreLauncher } from '../../src/launchers/semaphore/index.ts';
import { LaunchError, type Launcher } from '../../src/launchers/types.ts';
import { type FakeSemaphore, type Outcome, startFakeSemaphore } from '../helpers/fake-semaphore.ts';
import { launchCtx, testConfig } from '../helpers/launchers.ts';
import { freePort } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';

const SECRET = 's3cr3t-token-value';
let fake: FakeSemaphore;
let outcome: Outcome = 'success';

before(async () => {
  fake = await startFakeSemaphore({ apiToken: SECRET, username: 'admin', password: 'pw', outcome: () => outcome });
});
after(() => fake.close());

function config(global: Record<string, unknown>, svc: Record<string, unknown> = {}): Config {
  return testConfig({
    semaphore_base_url: fake.url,
    ...global,
    services: {
      'cloud-ml': {
        base_url: 'http://127.0.0.1:9',
        semaphore_enabled: true,
        semaphore_machine_id: 'gpu-vm',
        semaphore_start_template_id: 3,
        semaphore_stop_template_id: 4,
        semaphore_project_id: 5,
        semaphore_poll_interval: 0.02,
        ...svc,
      },
    },
  });
}

function launcher(cfg: Config): Launcher {
  const svc = cfg.services['cloud-ml']!;
  assert.equal(svc.launcher?.type, 'semaphore', 'semaphore_enabled implies the semaphore launcher');
  return createSemaphoreLauncher(svc.launcher!, { serviceId: 'cloud-ml', config: cfg, log: launchCtx('x').log });
}

const ctx = () => launchCtx('cloud-ml', { machineId: 'gpu-vm' });

describe('semaphore launcher (fake Semaphore API)', () => {
  test('start runs the start template with SERVICE_ID/MACHINE_ID/ACTION as a JSON environment string; stop runs the stop template', async () => {
    outcome = 'success';
    const first = fake.tasks.length;
    const l = launcher(config({ semaphore_api_key: SECRET }));
    assert.deepEqual(l.statusInfo!(), {
      enabled: true,
      provider: 'semaphore',
      machine_id: 'gpu-vm',
      current_task: null,
      last_task: null,
    });

    const h = await l.start(ctx());
    const task = fake.tasks[first]!;
    assert.equal(task.template_id, 3);
    assert.equal(task.project_id, 5);
    assert.equal(typeof task.environment, 'string');
    assert.deepEqual(JSON.parse(task.environment), { SERVICE_ID: 'cloud-ml', MACHINE_ID: 'gpu-vm', ACTION: 'start' });
    assert.equal(h.info?.semaphore_task_id, task.id);

    const s = l.statusInfo!() as { current_task: unknown; last_task: Record<string, unknown> };
    assert.equal(s.current_task, null);
    assert.deepEqual(Object.keys(s.last_task).sort(), [
      'completed_at',
      'duration_ms',
      'started_at',
      'status',
      'task_id',
      'template_id',
    ]);
    assert.equal(s.last_task.task_id, String(task.id));
    assert.equal(s.last_task.status, 'success');
    assert.equal(s.last_task.template_id, 3);
    assert.equal(typeof s.last_task.duration_ms, 'number');
    assert.ok(!Number.isNaN(Date.parse(String(s.last_task.completed_at))));

    await l.stop(h, ctx());
    const stopTask = fake.tasks[first + 1]!;
    assert.equal(stopTask.template_id, 4);
    assert.equal(JSON.parse(stopTask.environment).ACTION, 'stop');
    assert.ok(
      fake.requests.filter((r) => r.path.startsWith('/api/project/')).every((r) => r.auth === 'bearer'),
      'every API call carried the bearer token',
    );
  });

  test('username/password: one login, the session cookie is reused, and renewed after a 401', async () => {
    outcome = 'success';
    const logins = fake.logins;
    const l = launcher(config({ semaphore_username: 'admin', semaphore_password: 'pw' }));
    const h = await l.start(ctx());
    await l.stop(h, ctx());
    assert.equal(fake.logins, logins + 1, 'logged in once for start and stop');
    fake.expireSessions();
    await l.start(ctx());
    assert.equal(fake.logins, logins + 2, 'logged in again after the session expired');
  });

  test('a task that ends in error fails the start with the task id and status', async () => {
    outcome = 'error';
    const l = launcher(config({ semaphore_api_key: SECRET }));
    const err = await l.start(ctx()).then(
      () => assert.fail('start should fail'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof LaunchError);
    const id = fake.tasks.at(-1)!.id;
    assert.match(
      err.message,
      new RegExp(`Semaphore task ${id} \\(template 3, start of 'cloud-ml' on 'gpu-vm'\\) ended with status 'error'`),
    );
    assert.equal(err.details.taskId, id);
    assert.equal(err.details.status, 'error');
    assert.equal((l.statusInfo!() as { last_task: { status: string } }).last_task.status, 'error');
  });

  test('while a task runs, statusInfo shows it as current_task', async () => {
    outcome = 'manual';
    const l = launcher(config({ semaphore_api_key: SECRET }));
    const p = l.start(ctx());
    await waitFor(
      async () => {
        const cur = (l.statusInfo!() as { current_task: { status: string } | null }).current_task;
        return cur?.status === 'running';
      },
      { message: 'task running' },
    );
    const task = fake.tasks.at(-1)!;
    const cur = (l.statusInfo!() as { current_task: Record<string, unknown> }).current_task;
    assert.deepEqual(
      { ...cur, started_at: typeof cur.started_at },
      { task_id: String(task.id), status: 'running', template_id: 3, started_at: 'string' },
    );
    fake.finish(task.id, 'success');
    await p;
    assert.equal((l.statusInfo!() as { current_task: unknown }).current_task, null);
  });

  test('a task that outlives semaphore_task_timeout fails and is asked to stop', async () => {
    outcome = 'manual';
    const l = launcher(config({ semaphore_api_key: SECRET }, { semaphore_task_timeout: 0.3 }));
    await assert.rejects(l.start(ctx()), (e: unknown) => {
      assert.ok(e instanceof LaunchError);
      assert.match(e.message, /still 'running' after 0\.3 s; asked Semaphore to stop it/);
      return true;
    });
    assert.equal(fake.tasks.at(-1)!.status, 'stopped');
  });

  test('a rejected API key is a 401 LaunchError that does not contain the key', async () => {
    const l = launcher(config({ semaphore_api_key: 'wrong-key-123' }));
    await assert.rejects(l.start(ctx()), (e: unknown) => {
      assert.ok(e instanceof LaunchError);
      assert.match(e.message, /HTTP 401.*semaphore_api_key was not accepted/);
      assert.ok(!JSON.stringify({ m: e.message, d: e.details }).includes('wrong-key-123'));
      return true;
    });
  });

  test('a wrong password fails the login with a clear message', async () => {
    const l = launcher(config({ semaphore_username: 'admin', semaphore_password: 'nope' }));
    await assert.rejects(l.start(ctx()), /Semaphore login as 'admin' refused \(HTTP 401\)/);
  });

  test('no semaphore_base_url, or nobody listening, is a clear LaunchError', async () => {
    const noUrl = launcher(config({ semaphore_base_url: null, semaphore_api_key: SECRET }));
    await assert.rejects(noUrl.start(ctx()), /semaphore_base_url is not set/);
    const port = await freePort();
    const down = launcher(config({ semaphore_base_url: `http://127.0.0.1:${port}`, semaphore_api_key: SECRET }));
    await assert.rejects(down.start(ctx()), /Semaphore at http:\/\/127\.0\.0\.1:\d+ unreachable .*ECONNREFUSED/);
  });
});
