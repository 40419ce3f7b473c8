/**
 * SPEC §12 output capture with the `docker` launcher against a real Docker Engine API
 * (podman's compatible service, scripts/ci/setup-podman.sh): the container's stdout and stderr,
 * followed through `logs?follow=true`, reach the service's ring, `GET /v1/services/{id}/logs`
 * and the live `/logs/stream`; a second run shows only its own output; what the container prints
 * as it stops (on SIGTERM) is in the ring when the stop completes.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { DockerApi } from '../../src/launchers/docker/index.ts';
import type { OutputLine } from '../../src/observability/output-ring.ts';
import { PODMAN_SOCK, podmanUnavailable, requireOrSkip } from '../helpers/backends.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { freePort } from '../helpers/net.ts';

const skip = requireOrSkip('podman Docker API', await podmanUnavailable());
const IMAGE = 'localhost/hestia-busybox:latest';

/** A docker service: busybox running `script` (which serves HTTP on `port`) in `container`. */
function boxService(port: number, container: string, stopTimeoutS: number, script: string) {
  return {
    base_url: `http://127.0.0.1:${port}`,
    health_url: `http://127.0.0.1:${port}/`,
    health_interval_ms: 50,
    start_timeout_ms: 60_000,
    launcher: {
      type: 'docker',
      socket: PODMAN_SOCK,
      container,
      stop_timeout_s: stopTimeoutS,
      create: { image: IMAGE, cmd: ['/bin/sh', '-c', script] },
    },
  };
}

describe('docker output capture (podman Docker API)', { skip }, () => {
  const api = new DockerApi({ socket: PODMAN_SOCK });
  const name = `hestia-vis-${process.pid}`;
  after(async () => {
    await api.remove(name);
    await api.close();
  });

  test('container stdout/stderr in /logs and /logs/stream, only the current run', async (t) => {
    const port = await freePort();
    const gw = await startTestGateway({
      services: {
        box: boxService(
          port,
          name,
          2,
          `echo "hello from the container $(date +%s)-$RANDOM"; echo 'a warning' >&2; exec /bin/httpd -f -p 127.0.0.1:${port} -h /www`,
        ),
      },
    });
    t.after(() => gw.close());
    const events = new EventRecorder(gw.ctx.bus);

    const ac = new AbortController();
    const stream = await fetch(`${gw.url}/v1/services/box/logs/stream`, { signal: ac.signal });
    assert.equal(stream.status, 200);
    const reader = stream.body!.getReader();
    const dec = new TextDecoder();
    const live: OutputLine[] = [];
    const followed = (async () => {
      let text = '';
      while (!(live.some((l) => l.stream === 'stdout') && live.some((l) => l.stream === 'stderr'))) {
        const { value, done } = await reader.read();
        if (done) break;
        text += dec.decode(value, { stream: true });
        for (;;) {
          const i = text.indexOf('\n\n');
          if (i < 0) break;
          for (const l of text.slice(0, i).split('\n'))
            if (l.startsWith('data: ')) live.push(JSON.parse(l.slice(6)) as OutputLine);
          text = text.slice(i + 2);
        }
      }
    })();

    assert.equal((await fetch(`${gw.url}/v1/services/box/start`, { method: 'POST' })).status, 202);
    await events.nth('service_ready', 1);
    await followed;
    ac.abort();
    assert.ok(
      live.some((l) => l.stream === 'stdout' && /^hello from the container \d+-\d+$/.test(l.text)),
      JSON.stringify(live),
    );
    assert.ok(
      live.some((l) => l.stream === 'stderr' && l.text === 'a warning'),
      JSON.stringify(live),
    );

    const first = ((await (await fetch(`${gw.url}/v1/services/box/logs`)).json()) as { lines: OutputLine[] }).lines;
    const hello1 = first.filter((l) => l.text.startsWith('hello from the container'));
    assert.equal(hello1.length, 1, JSON.stringify(first));

    // Stop and start again: the second run adds its own lines, not the first run's again.
    assert.equal((await fetch(`${gw.url}/v1/services/box/stop`, { method: 'POST' })).status, 202);
    await events.nth('service_stopped', 1);
    assert.equal((await fetch(`${gw.url}/v1/services/box/start`, { method: 'POST' })).status, 202);
    await events.nth('service_ready', 2);
    const ring = gw.ctx.services.get('box')!.output!();
    if (ring.tail().filter((l) => l.text.startsWith('hello from the container')).length < 2) {
      await new Promise<void>((resolve) => {
        const off = ring.subscribe((l) => {
          if (l.text.startsWith('hello from the container')) {
            off();
            resolve();
          }
        });
      });
    }
    const second = ((await (await fetch(`${gw.url}/v1/services/box/logs`)).json()) as { lines: OutputLine[] }).lines;
    const hellos = second.filter((l) => l.text.startsWith('hello from the container')).map((l) => l.text);
    assert.equal(hellos.length, 2, JSON.stringify(second));
    assert.notEqual(hellos[0], hellos[1]);
  });

  test('the last lines a container prints on SIGTERM are in the ring when the stop completes', async (t) => {
    const port = await freePort();
    const gw = await startTestGateway({
      services: {
        box: boxService(
          port,
          `${name}-term`,
          10,
          `trap 'echo "saving state on SIGTERM"; echo "bye" >&2; exit 0' TERM; /bin/httpd -f -p 127.0.0.1:${port} -h /www & wait`,
        ),
      },
    });
    t.after(async () => {
      await gw.close();
      await api.remove(`${name}-term`);
    });
    const events = new EventRecorder(gw.ctx.bus);
    assert.equal((await fetch(`${gw.url}/v1/services/box/start`, { method: 'POST' })).status, 202);
    await events.nth('service_ready', 1);
    assert.equal((await fetch(`${gw.url}/v1/services/box/stop`, { method: 'POST' })).status, 202);
    await events.nth('service_stopped', 1);
    // No wait here: the stop completed only after the log stream delivered the container's end.
    const texts = gw.ctx.services.get('box')!.output!()
      .tail()
      .map((l) => `${l.stream} ${l.text}`);
    assert.ok(texts.includes('stdout saving state on SIGTERM'), JSON.stringify(texts));
    assert.ok(texts.includes('stderr bye'), JSON.stringify(texts));
  });
});
