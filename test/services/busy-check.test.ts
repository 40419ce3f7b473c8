import assert from 'node:assert/strict';
import { test } from 'node:test';
import { busyCheckSchema } from '../../src/config/schema.ts';
import { checkBusy, isBusyValue, valueAtPath } from '../../src/services/busy-check.ts';
import { templateVars } from '../../src/services/placement.ts';
import { jsonHandler, startUpstream } from '../helpers/upstream.ts';

test('valueAtPath walks dotted paths through objects and arrays', () => {
  const doc = { exec_info: { queue_remaining: 2 }, items: [{ state: 'busy' }] };
  assert.equal(valueAtPath(doc, 'exec_info.queue_remaining'), 2);
  assert.equal(valueAtPath(doc, 'items.0.state'), 'busy');
  assert.equal(valueAtPath(doc, 'exec_info.nope.deeper'), undefined);
  assert.equal(valueAtPath(null, 'a'), undefined);
});

test('busy when the value equals `equals` (deep), else when it is truthy / a non-empty array', () => {
  assert.equal(isBusyValue('busy', 'busy'), true);
  assert.equal(isBusyValue('idle', 'busy'), false);
  assert.equal(isBusyValue({ a: [1] }, { a: [1] }), true);
  assert.equal(isBusyValue(0, undefined), false);
  assert.equal(isBusyValue(3, undefined), true);
  assert.equal(isBusyValue([], undefined), false);
  assert.equal(isBusyValue([{}], undefined), true);
});

test('checkBusy asks the service; an unreachable check counts as not busy', async () => {
  const up = await startUpstream(
    jsonHandler((path) =>
      path === '/queue' ? { status: 200, body: { exec_info: { queue_remaining: 1 } } } : { status: 500, body: {} },
    ),
  );
  try {
    const url = `http://127.0.0.1:${up.port}`;
    const withPath = busyCheckSchema.parse({ url: `${url}/queue`, json_path: 'exec_info.queue_remaining' });
    assert.equal((await checkBusy(withPath, withPath.url)).busy, true);
    const equalsZero = busyCheckSchema.parse({
      url: `${url}/queue`,
      json_path: 'exec_info.queue_remaining',
      equals: 0,
    });
    assert.equal((await checkBusy(equalsZero, equalsZero.url)).busy, false);
    const statusOnly = busyCheckSchema.parse({ url: `${url}/queue` });
    assert.equal((await checkBusy(statusOnly, statusOnly.url)).busy, true, '2xx without json_path = busy');
    const failing = busyCheckSchema.parse({ url: `${url}/broken` });
    assert.equal((await checkBusy(failing, failing.url)).busy, false);
  } finally {
    await up.close();
  }
  const gone = busyCheckSchema.parse({ url: 'http://127.0.0.1:9/x' });
  const r = await checkBusy(gone, gone.url);
  assert.equal(r.busy, false);
  assert.match(r.detail, /busy check failed/);
});

test('{port} is the port of base_url (explicit, else 80/443), read after {host} is substituted', () => {
  const m = { id: 'gpu-box', host: '10.0.0.5' };
  assert.deepEqual(templateVars('s', 'http://{host}:8081/v1', m), {
    host: '10.0.0.5',
    machine: 'gpu-box',
    port: '8081',
    service: 's',
  });
  assert.equal(templateVars('s', 'https://{host}/api', m).port, '443');
  assert.equal(templateVars('s', 'http://{machine}.lan', m).port, '80');
});
