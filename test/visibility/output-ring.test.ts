/**
 * The output ring's rules (SPEC §12) on their own: line splitting across chunks, the line and
 * byte bounds, long lines cut, CRLF, control bytes, masking; and the Docker log demultiplexer
 * fed frames split at every possible byte.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { secretValues, textMasker } from '../../src/config/mask.ts';
import { LogDemuxer } from '../../src/launchers/docker/api.ts';
import { OutputRing } from '../../src/observability/output-ring.ts';

test('lines split across chunks and streams; CRLF; a last line without newline kept at end', () => {
  const r = new OutputRing();
  r.write('stdout', 'he');
  r.write('stderr', 'warn');
  r.write('stdout', 'llo\r\nwor');
  r.write('stderr', 'ing\n');
  r.write('stdout', 'ld');
  r.end('stdout');
  assert.deepEqual(
    r.tail().map((l) => [l.stream, l.text]),
    [
      ['stdout', 'hello'],
      ['stderr', 'warning'],
      ['stdout', 'world'],
    ],
  );
});

test('bounded by lines and bytes (oldest first); long lines cut with the count; control bytes replaced', () => {
  const r = new OutputRing({ maxLines: 3, maxBytes: 2048, maxLineBytes: 1024 });
  for (let i = 0; i < 10; i++) r.write('stdout', `line ${i}\n`);
  assert.deepEqual(
    r.tail().map((l) => l.text),
    ['line 7', 'line 8', 'line 9'],
  );
  r.write('stdout', `${'a'.repeat(5000)}\n`);
  const cut = r.tail(1)[0]!.text;
  assert.equal(cut, `${'a'.repeat(1024)} … [line cut: 3976 more bytes]`);
  r.write('stdout', `${'b'.repeat(1000)}\n${'c'.repeat(1000)}\n`);
  assert.ok(r.size.bytes <= 2048, `bytes bounded: ${r.size.bytes}`);
  assert.deepEqual(
    r.tail().map((l) => l.text[0]),
    ['b', 'c'],
  );
  r.write('stdout', Buffer.from([0x41, 0x00, 0x1b, 0x09, 0xff, 0x0a]));
  assert.equal(r.tail(1)[0]!.text, 'A\ufffd\ufffd\t\ufffd');
});

test('secrets of the config are masked; short values are not treated as secrets', () => {
  const secrets = secretValues({
    auth: { password: 'hunter2-long' },
    services: {
      a: { launcher: { env: { HF_TOKEN: 'hf_abcdef', PORT: '8080' }, headers: { Authorization: 'Bearer xyz123' } } },
    },
    token: 'abc',
  });
  assert.deepEqual(secrets.sort(), ['Bearer xyz123', 'hf_abcdef', 'hunter2-long']);
  const r = new OutputRing({ mask: textMasker(secrets) });
  r.write('stdout', 'token=hf_abcdef port=8080 pw=hunter2-long\n');
  assert.equal(r.tail(1)[0]!.text, 'token=*** port=8080 pw=***');
});

test('LogDemuxer: frames split at every byte give the same stream pieces', () => {
  const frame = (type: number, text: string) => {
    const body = Buffer.from(text);
    const head = Buffer.alloc(8);
    head[0] = type;
    head.writeUInt32BE(body.length, 4);
    return Buffer.concat([head, body]);
  };
  const all = Buffer.concat([frame(1, 'out one\n'), frame(2, 'err\n'), frame(1, 'out two\n')]);
  for (let cut = 0; cut <= all.length; cut++) {
    const got: Record<string, string> = { stdout: '', stderr: '' };
    const d = new LogDemuxer((s, b) => {
      got[s] += b.toString();
    });
    d.push(all.subarray(0, cut));
    d.push(all.subarray(cut));
    assert.deepEqual(got, { stdout: 'out one\nout two\n', stderr: 'err\n' }, `cut at ${cut}`);
  }
});

test('resize: a smaller ring drops its oldest lines at once; a larger one keeps them and grows', () => {
  const r = new OutputRing({ maxLines: 10 });
  for (let i = 0; i < 10; i++) r.write('stdout', `line ${i}\n`);
  r.resize({ maxLines: 3 });
  assert.deepEqual(
    r.tail().map((l) => l.text),
    ['line 7', 'line 8', 'line 9'],
  );
  r.resize({ maxLines: 5 });
  for (let i = 10; i < 13; i++) r.write('stdout', `line ${i}\n`);
  assert.deepEqual(
    r.tail().map((l) => l.text),
    ['line 8', 'line 9', 'line 10', 'line 11', 'line 12'],
  );
  r.resize({ maxLines: 100, maxBytes: 16 });
  assert.ok(r.size.bytes <= 16, `bytes bounded after resize: ${r.size.bytes}`);
  assert.deepEqual(
    r.tail().map((l) => l.text),
    ['line 11', 'line 12'],
  );
});
