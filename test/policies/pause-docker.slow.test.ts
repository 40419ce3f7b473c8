/**
 * `stop_mode: pause` with a real container (podman's Docker API, image
 * localhost/hestia-busybox:latest, busybox httpd on host networking): the idle stop pauses the
 * container (State.Paused), the next request unpauses the same container, and an explicit stop
 * of the paused service stops it for real.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { DockerApi } from '../../src/launchers/docker/index.ts';
import { Store } from '../../src/store/store.ts';
import { PODMAN_SOCK, podmanUnavailable, requireOrSkip } from '../helpers/backends.ts';
import { type TestRegistry, tempDir } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';
import { policyRegistry } from './helpers.ts';

const skip = requireOrSkip('podman Docker API', await podmanUnavailable());
const IMAGE = 'localhost/hestia-busybox:latest';
const tmp = tempDir();

describe('stop_mode: pause with a container', { skip: skip ?? false }, () => {
  const api = new DockerApi({ socket: PODMAN_SOCK });
  const names: string[] = [];
  const registries: TestRegistry[] = [];
  const stores: Store[] = [];
  after(async () => {
    for (const t of registries) await t.close();
    for (const st of stores) st.close();
    for (const n of names) await api.remove(n);
    await api.close();
    tmp.cleanup();
  });

  const webService = (port: number, name: string) => ({
    web: {
      base_url: `http://127.0.0.1:${port}`,
      health_url: `http://127.0.0.1:${port}/`,
      health_interval_ms: 20,
      idle_timeout_ms: 200,
      stop_mode: 'pause',
      launcher: {
        type: 'docker',
        container: name,
        socket: PODMAN_SOCK,
        stop_timeout_s: 2,
        create: { image: IMAGE, cmd: ['/bin/httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/www'] },
      },
    },
  });

  test('idle pauses the container; a request unpauses the same container; a stop stops it', async () => {
    const port = await freePort();
    const name = `hestia-pause-${process.pid}`;
    names.push(name);
    const t = policyRegistry(webService(port, name));
    registries.push(t);
    const web = t.registry.get('web')!;
    (await web.acquire()).release();
    const id = (await api.inspect(name))?.Id;
    await t.events.nth('service_paused', 1, 20_000);
    const paused = await api.inspect(name);
    assert.equal(paused?.State.Paused, true);
    assert.equal(web.state, 'cold');
    assert.equal(web.status().paused, true);

    const lease = await web.acquire();
    const res = await fetch(`${lease.baseUrl}/`);
    lease.release();
    assert.equal(res.status, 200);
    assert.equal(await res.text(), 'hi-podman\n');
    const resumed = await api.inspect(name);
    assert.equal(resumed?.State.Paused, false);
    assert.equal(resumed?.Id, id, 'the same container, unpaused');
    assert.equal(t.events.of('service_ready', 'web')[1]?.details.resumed, true);

    // Paused again, then stopped for real by an explicit stop (it is thawed first).
    await t.events.nth('service_paused', 2, 20_000);
    assert.equal(web.stop('test'), true);
    await waitFor(async () => (await api.inspect(name))?.State.Running === false, {
      message: 'the paused container to stop',
    });
    assert.equal(web.status().paused, false);
  });

  test('a paused container outlives a gateway restart: the next gateway keeps it paused and resumes it', async () => {
    const port = await freePort();
    const name = `hestia-pause-restart-${process.pid}`;
    names.push(name);
    const db = tmp.path('pause-restart.db');
    const store1 = Store.open({ path: db, retentionMaxEvents: 1000, retentionMaxAgeDays: 1 });
    const t1 = policyRegistry(webService(port, name), undefined, store1);
    (await t1.registry.get('web')!.acquire()).release();
    const id = (await api.inspect(name))?.Id;
    await t1.events.nth('service_paused', 1, 20_000);
    await t1.registry.close(); // a container is left as it is at shutdown: paused
    store1.close();
    assert.equal((await api.inspect(name))?.State.Paused, true);

    const store2 = Store.open({ path: db, retentionMaxEvents: 1000, retentionMaxAgeDays: 1 });
    stores.push(store2);
    const t2 = policyRegistry(webService(port, name), undefined, store2);
    registries.push(t2);
    await t2.registry.restore();
    const web = t2.registry.get('web')!;
    assert.equal(web.state, 'cold');
    assert.equal(web.status().paused, true, 'still paused after the restart');
    const lease = await web.acquire();
    const res = await fetch(`${lease.baseUrl}/`);
    lease.release();
    assert.equal(res.status, 200);
    assert.equal((await api.inspect(name))?.Id, id, 'the same container');
    assert.equal(t2.events.of('service_ready', 'web')[0]?.details.resumed, true);
  });
});
