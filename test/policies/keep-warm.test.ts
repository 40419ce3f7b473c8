/**
 * keep_warm windows: the pure window arithmetic (local time), and a real process service driven
 * by a hand-moved clock — started at the window's start, not idle-stopped inside it, stopped by
 * the normal idle rule after it. No real hours are waited for.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  activeKeepWarmWindow,
  nextKeepWarmChange,
  parseKeepWarmWindow,
  parseKeepWarmWindows,
} from '../../src/config/keep-warm.ts';
import { closedAfterEachTest, fixtureService } from '../helpers/lifecycle.ts';
import { freePort } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';
import { ManualClock, policyRegistry } from './helpers.ts';

const { keep } = closedAfterEachTest();

/** Local time on Monday 5 January 2026 (a Monday), at h:m. */
const monday = (h: number, m = 0, s = 0) => new Date(2026, 0, 5, h, m, s).getTime();

test('windows: days, ranges, wrapping ranges, every day, and a window across midnight', () => {
  const w = parseKeepWarmWindows(['Mon-Fri 08:00-18:00']);
  assert.equal(activeKeepWarmWindow(w, monday(7, 59)), null);
  assert.equal(activeKeepWarmWindow(w, monday(8))?.window.text, 'Mon-Fri 08:00-18:00');
  assert.equal(activeKeepWarmWindow(w, monday(8))?.until, monday(18));
  assert.equal(activeKeepWarmWindow(w, monday(18)), null, 'the end is exclusive');
  const saturday = new Date(2026, 0, 10, 12).getTime();
  assert.equal(activeKeepWarmWindow(w, saturday), null);
  assert.equal(nextKeepWarmChange(w, monday(7)), monday(8));
  assert.equal(nextKeepWarmChange(w, monday(9)), monday(18));
  assert.equal(nextKeepWarmChange(w, saturday), new Date(2026, 0, 12, 8).getTime(), 'next Monday');

  // Sunday 22:00 to Monday 02:00: at Monday 01:00 it is active (it began the day before).
  const night = parseKeepWarmWindows(['Sun 22:00-02:00']);
  assert.equal(activeKeepWarmWindow(night, monday(1))?.window.text, 'Sun 22:00-02:00');
  assert.equal(activeKeepWarmWindow(night, monday(3)), null);

  const wrap = parseKeepWarmWindow('Fri-Mon 10:00-11:00');
  assert.ok(wrap.ok);
  assert.deepEqual([...wrap.window.days].sort(), [0, 1, 5, 6]);
  const daily = parseKeepWarmWindow('06:30-24:00');
  assert.ok(daily.ok);
  assert.equal(daily.window.days.size, 7);
  assert.equal(daily.window.lengthMin, 17 * 60 + 30);
  assert.ok(parseKeepWarmWindow('saturday,Sunday 09:00-12:00').ok);
});

test('a keep-warm service starts at the window start, is not idle-stopped in it, and idle-stops after it', async () => {
  const clock = new ManualClock(monday(7, 59));
  const port = await freePort();
  const t = keep(
    policyRegistry(
      { coder: fixtureService(port, [], { keep_warm: ['Mon-Fri 08:00-09:00'], idle_timeout_ms: 100 }) },
      clock,
    ),
  );
  const coder = t.registry.get('coder')!;
  await t.registry.restore();
  assert.equal(coder.state, 'cold', 'outside the window nothing starts');
  assert.equal(coder.status().keepWarm && (coder.status().keepWarm as { active: unknown }).active, null);

  clock.advanceTo(monday(8));
  const ready = await t.events.nth('service_ready', 1);
  assert.equal(t.events.of('service_start')[0]!.details.cause, 'policy');
  assert.match(String(t.events.of('service_start')[0]!.details.reason), /keep-warm window 'Mon-Fri 08:00-09:00'/);
  assert.ok(ready);

  // Its idle timeout (100 ms) passes inside the window: the stop is due, and held.
  await waitFor(
    () => t.logs().some((l) => l.event_type === 'idle_postponed' && String(l.detail).includes('keep-warm window')),
    { message: 'the idle stop held by the window' },
  );
  assert.equal(coder.state, 'hot');
  const status = coder.status();
  assert.deepEqual(status.keepWarm, {
    windows: ['Mon-Fri 08:00-09:00'],
    active: 'Mon-Fri 08:00-09:00',
    activeUntil: new Date(monday(9)).toISOString(),
    nextStart: new Date(2026, 0, 6, 8).toISOString(),
  });
  assert.match(String(status.idleHold), /keep-warm window/);
  assert.equal(t.events.of('idle_shutdown').length, 0);

  clock.advanceTo(monday(9));
  const stop = await t.events.nth('idle_shutdown', 1);
  assert.equal(stop.serviceId, 'coder');
  await t.events.nth('service_stopped', 1);
  assert.equal(coder.state, 'cold');
  assert.equal(clock.pending(), 1, 'one timer: the next window change');
});

test('a reload that adds a window covering now starts the service; shutdown cancels the window timer', async () => {
  const clock = new ManualClock(monday(10));
  const port = await freePort();
  const t = keep(policyRegistry({ api: fixtureService(port, []) }, clock));
  await t.registry.restore();
  assert.equal(clock.pending(), 0);
  const next = structuredClone(t.registry.config);
  next.services.api!.keep_warm = ['Mon 09:00-12:00'];
  t.registry.reconfigure(next);
  await t.events.nth('service_ready', 1);
  assert.equal(clock.pending(), 1);
  await t.registry.close();
  assert.equal(clock.pending(), 0, 'no timer left behind');
});
