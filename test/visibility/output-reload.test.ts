/**
 * A config reload that changes a service's `output_lines` / `output_bytes` resizes its output
 * ring at once (GET /v1/services/{id}/logs shows the new bound), without a restart of the service.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OutputLine } from '../../src/observability/output-ring.ts';
import { EventRecorder } from '../helpers/events.ts';
import { configFrom, startTestGateway } from '../helpers/gateway.ts';
import { FIXTURE } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';

test('reload resizes the output ring of a running service', async (t) => {
  const port = await freePort();
  const service = (outputLines: number) => ({
    base_url: `http://127.0.0.1:${port}`,
    health_url: `http://127.0.0.1:${port}/health`,
    health_interval_ms: 20,
    output_lines: outputLines,
    launcher: {
      type: 'process',
      command: `i=0; while [ $i -lt 10 ]; do echo "line $i"; i=$((i+1)); done; exec '${process.execPath}' '${FIXTURE}' --port ${port}`,
    },
  });
  const gw = await startTestGateway({ services: { web: service(8) } });
  t.after(() => gw.close());
  const events = new EventRecorder(gw.ctx.bus);
  const logs = async () =>
    ((await (await fetch(`${gw.url}/v1/services/web/logs?tail=100`)).json()) as { lines: OutputLine[] }).lines.map(
      (l) => l.text,
    );
  assert.equal((await fetch(`${gw.url}/v1/services/web/start`, { method: 'POST' })).status, 202);
  await events.nth('service_ready', 1);
  await waitFor(async () => (await logs()).includes('line 9'), { message: 'the last line in the ring' });
  assert.equal((await logs()).length, 8, 'bounded by output_lines: 8');

  const next = configFrom({ services: { web: service(3) } });
  next.server.db_path = ':memory:';
  await gw.reload(next);
  assert.deepEqual(await logs(), ['line 7', 'line 8', 'line 9']);
  assert.equal(gw.ctx.services.get('web')?.state, 'hot', 'the service kept running');
  assert.equal(events.of('service_stop').length, 0);
});
