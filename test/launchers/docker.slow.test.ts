/**
 * The docker launcher against a real Docker Engine API: podman's compatible service on a unix
 * socket (scripts/ci/setup-podman.sh), with the local image localhost/hestia-busybox:latest.
 * Containers use host networking, so busybox httpd answers on 127.0.0.1:<port>.
 */
import assert from 'node:assert/strict';
import { type AddressInfo, connect, createServer as createNetServer } from 'node:net';
import { after, describe, test } from 'node:test';
import { Client } from 'undici';
import { dockerLauncherSchema } from '../../src/config/schema.ts';
import { createDockerLauncher, DockerApi } from '../../src/launchers/docker/index.ts';
import { LaunchError, type Launcher } from '../../src/launchers/types.ts';
import { PODMAN_SOCK, podmanUnavailable, requireOrSkip } from '../helpers/backends.ts';
import { launchCtx, testConfig } from '../helpers/launchers.ts';
import { freePort, portOpen } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';

const skip = requireOrSkip('podman Docker API', await podmanUnavailable());
const IMAGE = 'localhost/hestia-busybox:latest';
const names: string[] = [];
const launchers: Launcher[] = [];
let seq = 0;

function containerName(): string {
  const n = `hestia-test-${process.pid}-${++seq}`;
  names.push(n);
  return n;
}

function dockerLauncher(raw: Record<string, unknown>): Launcher {
  const cfg = dockerLauncherSchema.parse({ type: 'docker', socket: PODMAN_SOCK, stop_timeout_s: 5, ...raw });
  const l = createDockerLauncher(cfg, { serviceId: 'web', config: testConfig({}), log: launchCtx('web').log });
  launchers.push(l);
  return l;
}

function httpdCreate(port: number, extra: Record<string, unknown> = {}) {
  return { image: IMAGE, cmd: ['/bin/httpd', '-f', '-p', `127.0.0.1:${port}`, '-h', '/www'], ...extra };
}

/**
 * GET / once the server listens. A started container (State.Running) has not necessarily
 * bound its port yet (readiness is the core's job, via health_url), so wait for the port
 * first: a bounded poll, as nothing signals it.
 */
async function get(port: number): Promise<string> {
  await waitFor(() => portOpen(port), { message: `httpd listening on ${port}` });
  const r = await fetch(`http://127.0.0.1:${port}/`);
  return r.text();
}

describe('docker launcher (podman Docker API on a unix socket)', { skip: skip ?? false }, () => {
  const api = new DockerApi({ socket: PODMAN_SOCK });
  after(async () => {
    for (const l of launchers) await l.close?.();
    for (const n of names) await api.remove(n);
    await api.close();
  });

  test('creates a missing container, serves, stops (State exited, exited settles), starts again', async () => {
    const port = await freePort();
    const name = containerName();
    const create = httpdCreate(port);
    const l = dockerLauncher({ container: name, create });
    const ctx = launchCtx('web', { port });
    assert.equal(await l.isRunning!(ctx), false);

    const h = await l.start(ctx);
    assert.equal(h.persist?.container, name);
    assert.equal(await get(port), 'hi-podman\n');
    assert.equal(await l.isRunning!(ctx), true);
    const created = await api.inspect(name);
    assert.equal(
      (created as unknown as { HostConfig: { Init: boolean } }).HostConfig.Init,
      true,
      'Init defaults to true',
    );

    await l.stop(h, ctx);
    const exit = await h.exited!;
    assert.match(exit.reason, new RegExp(`container '${name}' exited with code \\d+`));
    const info = await api.inspect(name);
    assert.equal(info?.State.Running, false);
    assert.equal(info?.State.Status, 'exited');
    assert.equal(await portOpen(port), false);
    assert.equal(await l.isRunning!(ctx), false);
    assert.equal(await l.adopt!({ container: name }, ctx), null, 'a stopped container is not adopted');

    const h2 = await l.start(ctx);
    assert.equal(h2.persist?.id, h.persist?.id, 'the same container is restarted, not recreated');
    assert.equal(await get(port), 'hi-podman\n');
    const adopted = await l.adopt!({ container: name }, ctx);
    assert.ok(adopted?.exited, 'a running container is adopted with an exit watch');
    await l.stop(h2, ctx);
    await h2.exited;
    await adopted.exited;
    // Stopping a stopped container is fine (304).
    await l.stop(h2, ctx);
  });

  test('a container killed behind the launcher’s back settles handle.exited (crash detection)', async () => {
    const port = await freePort();
    const name = containerName();
    const create = httpdCreate(port);
    const l = dockerLauncher({ container: name, create });
    const h = await l.start(launchCtx('web', { port }));
    const raw = new Client('http://docker', { socketPath: PODMAN_SOCK });
    try {
      const r = await raw.request({ method: 'POST', path: `/v1.41/containers/${name}/kill?signal=KILL` });
      await r.body.dump();
      assert.equal(r.statusCode, 204);
    } finally {
      await raw.close();
    }
    const exit = await h.exited!;
    assert.equal(exit.code, 137);
    assert.match(exit.reason, /exited with code 137/);
  });

  test('a missing container without a create block fails with "container \'x\' not found"', async () => {
    const l = dockerLauncher({ container: 'hestia-test-does-not-exist' });
    await assert.rejects(l.start(launchCtx('web')), (e: unknown) => {
      assert.ok(e instanceof LaunchError);
      assert.match(e.message, /container 'hestia-test-does-not-exist' not found/);
      return true;
    });
    // Stopping a container that does not exist is not an error.
    await l.stop({}, launchCtx('web'));
  });

  test('a missing image fails the create with the API message', async () => {
    const l = dockerLauncher({ container: containerName(), create: { image: 'localhost/hestia-no-such-image:1' } });
    await assert.rejects(l.start(launchCtx('web')), (e: unknown) => {
      assert.ok(e instanceof LaunchError);
      assert.match(e.message, /image 'localhost\/hestia-no-such-image:1' not found/);
      assert.equal(e.details.status, 404);
      return true;
    });
  });

  test('a start the runtime refuses (no such command) fails with the runtime error', async () => {
    const l = dockerLauncher({
      container: containerName(),
      create: { image: IMAGE, cmd: ['/bin/nonexistent'], init: false },
    });
    await assert.rejects(l.start(launchCtx('web')), (e: unknown) => {
      assert.ok(e instanceof LaunchError);
      assert.match(e.message, /cannot start container .*\/bin\/nonexistent/);
      return true;
    });
  });

  test('ulimits and env from the create block reach the container config', async () => {
    const port = await freePort();
    const name = containerName();
    const create = httpdCreate(port, { env: { GREETING: 'hi-{service}' }, ulimits: { nofile: 2048, nproc: 4096 } });
    const l = dockerLauncher({ container: name, create });
    const h = await l.start(launchCtx('web', { port }));
    const info = (await api.inspect(name)) as unknown as {
      Config: { Env: string[] };
      HostConfig: { Ulimits: Array<{ Name: string; Soft: number }> };
    };
    assert.ok(info.Config.Env.includes('GREETING=hi-web'));
    assert.ok(info.HostConfig.Ulimits.some((u) => /nofile/i.test(u.Name) && u.Soft === 2048));
    await l.stop(h, launchCtx('web', { port }));
  });

  test('docker_host tcp://host:port reaches the same API over TCP', async () => {
    // A plain TCP → unix-socket relay stands in for a daemon listening on TCP.
    const relay = createNetServer((c) => {
      const u = connect(PODMAN_SOCK);
      c.pipe(u).pipe(c);
      c.on('error', () => u.destroy());
      u.on('error', () => c.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    try {
      const port = await freePort();
      const name = containerName();
      const l = dockerLauncher({
        container: name,
        docker_host: `tcp://127.0.0.1:${(relay.address() as AddressInfo).port}`,
        create: httpdCreate(port),
      });
      const h = await l.start(launchCtx('web', { port }));
      assert.equal(await get(port), 'hi-podman\n');
      await l.stop(h, launchCtx('web', { port }));
      assert.equal((await api.inspect(name))?.State.Running, false);
      await l.close?.();
    } finally {
      relay.close();
    }
  });

  test('an unreachable API is a LaunchError naming the socket', async () => {
    const l = dockerLauncher({ container: 'x', socket: '/tmp/hestia-ci/no-such.sock' });
    await assert.rejects(l.start(launchCtx('web')), /Docker API at unix:\/tmp\/hestia-ci\/no-such\.sock unreachable/);
  });
});
