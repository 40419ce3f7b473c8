import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  canTransition,
  IllegalTransitionError,
  planTransition,
  TRANSITIONS,
  type TransitionCause,
} from '../../src/services/state-machine.ts';
import type { ServiceState } from '../../src/services/types.ts';

const STATES: ServiceState[] = ['cold', 'starting', 'hot', 'stopping'];
const CAUSES: TransitionCause[] = [
  'request',
  'api',
  'ready',
  'adopted',
  'start_failed',
  'idle',
  'api_stop',
  'shutdown',
  'evicted',
  'stopped',
  'crashed',
  'policy',
  'dependency',
  'paused',
];

test('the lifecycle of SPEC §5 is legal and emits the documented events', () => {
  assert.equal(planTransition('cold', 'starting', 'request'), 'service_start');
  assert.equal(planTransition('cold', 'starting', 'api'), 'service_start');
  assert.equal(planTransition('starting', 'hot', 'ready'), 'service_ready');
  assert.equal(planTransition('starting', 'cold', 'start_failed'), 'service_start_failed');
  assert.equal(planTransition('hot', 'stopping', 'api_stop'), 'service_stop');
  assert.equal(planTransition('hot', 'stopping', 'shutdown'), 'service_stop');
  assert.equal(planTransition('hot', 'stopping', 'idle'), 'idle_shutdown');
  assert.equal(planTransition('stopping', 'cold', 'stopped'), 'service_stopped');
  assert.equal(planTransition('hot', 'cold', 'crashed'), 'service_crashed');
  assert.equal(planTransition('cold', 'hot', 'adopted'), 'service_adopted');
  assert.equal(planTransition('starting', 'stopping', 'api_stop'), 'service_stop');
  // Capacity eviction (SPEC §6) stops a hot service through the same stop path.
  assert.equal(planTransition('hot', 'stopping', 'evicted'), 'service_stop');
  assert.equal(canTransition('starting', 'stopping', 'evicted'), false);
  // Lifecycle policies (docs/lifecycle-policies.md).
  assert.equal(planTransition('cold', 'starting', 'policy'), 'service_start');
  assert.equal(planTransition('hot', 'stopping', 'dependency'), 'service_stop');
  assert.equal(planTransition('starting', 'stopping', 'dependency'), 'service_stop');
  assert.equal(planTransition('stopping', 'cold', 'paused'), 'service_paused');
});

test('anything outside the table is illegal, including self-transitions', () => {
  let legal = 0;
  for (const from of STATES) {
    for (const to of STATES) {
      for (const cause of CAUSES) {
        const ok = canTransition(from, to, cause);
        if (ok) {
          legal++;
          continue;
        }
        assert.throws(() => planTransition(from, to, cause), IllegalTransitionError, `${from}->${to} (${cause})`);
      }
    }
  }
  const listed = [...TRANSITIONS.values()].reduce((n, e) => n + e.causes.length, 0);
  assert.equal(legal, listed);
  for (const s of STATES) for (const c of CAUSES) assert.equal(canTransition(s, s, c), false);
});

test('a stop never skips stopping, and a start never skips starting', () => {
  assert.equal(canTransition('hot', 'cold', 'idle'), false);
  assert.equal(canTransition('hot', 'cold', 'api_stop'), false);
  assert.equal(canTransition('cold', 'hot', 'request'), false);
  assert.equal(canTransition('stopping', 'starting', 'request'), false);
  assert.equal(canTransition('stopping', 'hot', 'ready'), false);
});
