/**
 * The pure parts of machines (SPEC §6): the placement order, the capacity arithmetic and
 * victim choice, the ledger's reservation guard, the magic packet, and the config checks that
 * keep placements possible.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LOCAL_MACHINE_ID, machineOrder, placedMachine } from '../../src/config/machine-order.ts';
import { resolveConfig } from '../../src/config/resolve.ts';
import {
  CapacityLedger,
  chooseVictims,
  exceedsTotal,
  shortfall,
  type VictimCandidate,
} from '../../src/machines/capacity.ts';
import { isMagicPacketFor, MAGIC_PACKET_BYTES, magicPacket, parseMac } from '../../src/machines/wol.ts';
import { configFrom } from '../helpers/gateway.ts';

const MACHINES = {
  laptop: { host: '127.0.0.1' },
  'gpu-box': { host: '127.0.0.2', tags: ['gpu'], capacity: { gpu_mem_mb: 24000 } },
  hpc: { host: '127.0.0.3' },
};

describe('placement order', () => {
  const config = configFrom({
    machines: MACHINES,
    placement_rules: [
      { match: { tags: ['large-model'] }, machines: ['gpu-box', 'laptop'] },
      { match: { tags: ['batch', 'gpu'] }, machines: ['hpc'] },
    ],
    services: {
      own: { base_url: 'http://{host}:1', machines: ['hpc', 'laptop', 'hpc'], tags: ['large-model'] },
      big: { base_url: 'http://{host}:1', tags: ['large-model', 'chat'] },
      both: { base_url: 'http://{host}:1', tags: ['gpu', 'batch'] },
      half: { base_url: 'http://{host}:1', tags: ['batch'] },
      pinned: { base_url: 'http://{host}:1', launcher: { type: 'ssh', machine: 'hpc', command: 'true' } },
    },
  });
  const order = (id: string) => {
    const svc = config.services[id];
    assert.ok(svc);
    return machineOrder(svc, config);
  };

  test("a service's own list wins (duplicates dropped), then the first rule whose tags it all has", () => {
    assert.deepEqual(order('own'), { ids: ['hpc', 'laptop'], source: 'service' });
    assert.deepEqual(order('big'), { ids: ['gpu-box', 'laptop'], source: 'rule', rule: 0 });
    assert.deepEqual(order('both'), { ids: ['hpc'], source: 'rule', rule: 1 });
  });

  test("no rule matches: the launcher's machine, else the gateway's own machine", () => {
    // `half` has only one of rule 1's tags.
    assert.deepEqual(order('half'), { ids: [LOCAL_MACHINE_ID], source: 'default' });
    assert.deepEqual(order('pinned'), { ids: ['hpc'], source: 'launcher' });
  });

  test('{host} comes from the machine; local is 127.0.0.1 unless machines.local says otherwise', () => {
    assert.deepEqual(placedMachine(config, 'gpu-box'), { id: 'gpu-box', host: '127.0.0.2' });
    assert.deepEqual(placedMachine(config, 'local'), { id: 'local', host: '127.0.0.1' });
    const c2 = configFrom({ machines: { local: { host: '10.1.2.3' } } });
    assert.deepEqual(placedMachine(c2, 'local'), { id: 'local', host: '10.1.2.3' });
  });
});

describe('capacity arithmetic', () => {
  test('shortfall counts only declared resources; exceedsTotal spots what can never fit', () => {
    const cap = { gpu_mem_mb: 24000, slots: 2 };
    assert.deepEqual(shortfall(cap, { gpu_mem_mb: 20000 }, { gpu_mem_mb: 4000 }), {});
    assert.deepEqual(shortfall(cap, { gpu_mem_mb: 20000 }, { gpu_mem_mb: 6000, ram_mb: 1e9 }), { gpu_mem_mb: 2000 });
    assert.deepEqual(shortfall(cap, { slots: 2 }, { slots: 1 }), { slots: 1 });
    assert.deepEqual(exceedsTotal(cap, { gpu_mem_mb: 30000 }), { gpu_mem_mb: 6000 });
    assert.deepEqual(exceedsTotal({}, { gpu_mem_mb: 30000 }), {});
  });

  test('victims: least recently used first, skipping those that free nothing needed, only when enough', () => {
    const c: VictimCandidate[] = [
      { serviceId: 'newest', requires: { gpu_mem_mb: 8000 }, lastUsedAt: 300 },
      { serviceId: 'oldest', requires: { gpu_mem_mb: 4000 }, lastUsedAt: 100 },
      { serviceId: 'cpu-only', requires: {}, lastUsedAt: 50 },
      { serviceId: 'middle', requires: { gpu_mem_mb: 8000 }, lastUsedAt: 200 },
    ];
    assert.deepEqual(chooseVictims(c, { gpu_mem_mb: 3000 }), ['oldest']);
    assert.deepEqual(chooseVictims(c, { gpu_mem_mb: 5000 }), ['oldest', 'middle']);
    assert.deepEqual(chooseVictims(c, { gpu_mem_mb: 20000 }), ['oldest', 'middle', 'newest']);
    assert.equal(chooseVictims(c, { gpu_mem_mb: 20001 }), null);
    assert.deepEqual(chooseVictims(c, {}), []);
  });

  test('the ledger: a reservation is taken or refused synchronously; release is idempotent', () => {
    const counts: Array<[string, number]> = [];
    const ledger = new CapacityLedger(
      (id): Record<string, number> => (id === 'gpu' ? { gpu_mem_mb: 100 } : {}),
      (id, n) => counts.push([id, n]),
    );
    const a = ledger.tryReserve('gpu', 'a', { gpu_mem_mb: 60 });
    const b = ledger.tryReserve('gpu', 'b', { gpu_mem_mb: 60 });
    assert.equal(a.ok, true);
    assert.deepEqual(b, { ok: false, short: { gpu_mem_mb: 20 } });
    // Undeclared machine: anything fits.
    assert.equal(ledger.tryReserve('laptop', 'b', { gpu_mem_mb: 60 }).ok, true);
    assert.deepEqual(ledger.used('gpu'), { gpu_mem_mb: 60 });
    if (!a.ok) return;
    a.claim.release();
    a.claim.release();
    assert.equal(a.claim.isReleased, true);
    assert.deepEqual(ledger.used('gpu'), {});
    assert.deepEqual(counts, [
      ['gpu', 1],
      ['laptop', 1],
      ['gpu', 0],
    ]);
    assert.equal(ledger.tryReserve('gpu', 'b', { gpu_mem_mb: 60 }).ok, true);
  });
});

describe('wake-on-LAN packet', () => {
  test('102 bytes: 6 × 0xFF then the MAC 16 times; MAC spellings', () => {
    const p = magicPacket('aa:bb:cc:dd:ee:0f');
    assert.equal(p.length, MAGIC_PACKET_BYTES);
    assert.deepEqual([...p.subarray(0, 6)], [255, 255, 255, 255, 255, 255]);
    for (let i = 0; i < 16; i++) assert.equal(p.subarray(6 + i * 6, 12 + i * 6).toString('hex'), 'aabbccddee0f');
    assert.ok(isMagicPacketFor(p, 'AA-BB-CC-DD-EE-0F'));
    assert.ok(!isMagicPacketFor(p, 'aa:bb:cc:dd:ee:00'));
    assert.equal(parseMac('aabbccddee0f').toString('hex'), 'aabbccddee0f');
    assert.throws(() => parseMac('aa:bb:cc:dd:ee'), /not a MAC address/);
  });
});

describe('config checks', () => {
  const issues = (obj: Record<string, unknown>) => {
    const r = resolveConfig(JSON.stringify(obj), {}, { file: 't.yml' });
    return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
  };

  test('a process launcher placed on another machine is an error naming where the placement came from', () => {
    const process = { type: 'process', command: ['x'] };
    const out = issues({
      machines: MACHINES,
      placement_rules: [{ match: { tags: ['gpu'] }, machines: ['gpu-box', 'local'] }],
      services: {
        a: { base_url: 'http://127.0.0.1:1', launcher: process, machines: ['laptop'] },
        b: { base_url: 'http://127.0.0.1:1', launcher: process, tags: ['gpu'] },
        ok: { base_url: 'http://127.0.0.1:1', launcher: process, machines: ['local'] },
      },
    });
    assert.equal(out.length, 2, out.join('\n'));
    assert.match(
      out[0] ?? '',
      /^services\.a\.launcher: is a process launcher.*services\.a\.machines places it on laptop/,
    );
    assert.match(out[1] ?? '', /^services\.b\.launcher: .*placement_rules\.0 places it on gpu-box/);
  });

  test('wake needs something to wait for; power actions name known machines; local is never slept', () => {
    const out = issues({
      machines: {
        a: { host: 'h', wake: { type: 'wol', mac: 'aa:bb:cc:dd:ee:ff' } },
        b: { host: 'h', ssh: {}, wake: { type: 'ssh', machine: 'nope', command: 'etherwake x' } },
        local: { host: '127.0.0.1', sleep: { type: 'command', command: 'true' } },
      },
    });
    assert.deepEqual(
      out.sort(),
      [
        'machines.a.wake: needs something to wait for after waking: set machines.a.ssh (its port is probed) or wake.wait_url',
        "machines.b.wake.machine: unknown machine 'nope'",
        'machines.local.sleep: the gateway’s own machine cannot be woken or put to sleep',
      ].sort(),
    );
  });
});
