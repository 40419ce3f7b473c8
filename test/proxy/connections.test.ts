/**
 * `upstream_max_connections`: the gateway never opens more connections to an upstream than the
 * service allows (counted on the upstream's side), requests beyond it wait and are answered,
 * and a request that waits for a connection when its client leaves is never sent.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { send } from '../helpers/client.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const CAP = 3;
const BURST = 12;

let burstUp: Upstream;
let maxOpen = 0;
let holdUp: Upstream;
const heldResponses: Array<() => void> = [];
let gw: TestGateway;

before(async () => {
  // Holds the first CAP requests until CAP are held at once, so that without a limit the whole
  // burst would have connected meanwhile; then answers everything.
  const waiting: Array<() => void> = [];
  let released = false;
  burstUp = await startUpstream((_req, res) => {
    const answer = () => res.end('ok');
    if (released) return answer();
    waiting.push(answer);
    if (waiting.length === CAP) {
      released = true;
      for (const a of waiting.splice(0)) a();
    }
  });
  burstUp.server.on('connection', () => {
    maxOpen = Math.max(maxOpen, burstUp.connections());
  });
  // /hold is answered only when the test says so; anything else at once.
  holdUp = await startUpstream((req, res) => {
    if (req.url === '/hold') heldResponses.push(() => res.end('held'));
    else res.end('ok');
  });
  gw = await startTestGateway({
    services: {
      burst: { base_url: burstUp.url, upstream_max_connections: CAP },
      one: { base_url: holdUp.url, upstream_max_connections: 1 },
    },
  });
});

after(async () => {
  await gw.close();
  await burstUp.close();
  await holdUp.close();
});

function inflight(id: string): number {
  const s = gw.ctx.services.get(id);
  assert.ok(s);
  return s.status().inflight;
}

test(`a burst of ${BURST} concurrent requests uses at most upstream_max_connections (${CAP}) connections`, async () => {
  const answers = await Promise.all(Array.from({ length: BURST }, (_, i) => send(gw.url, `/services/burst/r${i}`)));
  assert.deepEqual(
    answers.map((a) => a.status),
    Array(BURST).fill(200),
  );
  assert.equal(burstUp.requests.length, BURST);
  assert.ok(maxOpen <= CAP, `the upstream saw ${maxOpen} connections open at once (limit ${CAP})`);
  assert.equal(inflight('burst'), 0);
});

test('a request waiting for a free connection whose client leaves is never sent; its lease is released', async () => {
  // A holds the only connection.
  const a = send(gw.url, '/services/one/hold');
  await waitFor(() => heldResponses.length === 1, { message: 'A reached the upstream' });
  // B waits for a connection inside the gateway (it holds a lease meanwhile).
  const b = request(`${gw.url}/services/one/b`, { agent: false });
  b.on('error', () => {});
  b.end();
  await waitFor(() => inflight('one') === 2, { message: 'B leased and waiting for a connection' });
  b.destroy();
  await waitFor(() => inflight('one') === 1, { message: "B's lease released when its client left" });
  heldResponses.shift()?.();
  assert.equal((await a).status, 200);
  // The connection survived and serves the next request; B never reached the upstream.
  assert.equal((await send(gw.url, '/services/one/c')).status, 200);
  assert.deepEqual(
    holdUp.requests.map((r) => r.url),
    ['/hold', '/c'],
  );
  assert.equal(inflight('one'), 0);
});
