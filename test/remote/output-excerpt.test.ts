import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { excerpt, HeadTailLines, summarizeOutput } from '../../src/remote/output-excerpt.ts';

// What Node 20 prints when a server's listen fails and nobody handles 'error'.
const NODE_EADDRINUSE = `node:events:497
      throw er; // Unhandled 'error' event
      ^

Error: listen EADDRINUSE: address already in use 127.0.0.1:28126
    at Server.setupListenHandle [as _listen2] (node:net:1897:16)
    at listenInCluster (node:net:1945:12)
    at doListen (node:net:2109:7)
    at process.processTicksAndRejections (node:internal/process/task_queues:83:21)
Emitted 'error' event on Server instance at:
    at emitErrorNT (node:net:1924:8)
    at process.processTicksAndRejections (node:internal/process/task_queues:82:21) {
  code: 'EADDRINUSE',
  errno: -98,
  syscall: 'listen',
  address: '127.0.0.1',
  port: 28126
}

Node.js v20.19.0`;

const PYTHON = `Traceback (most recent call last):
  File "/srv/app.py", line 3, in <module>
    s.bind(("127.0.0.1", 28126))
OSError: [Errno 98] Address already in use`;

describe('summarizeOutput', () => {
  test('a Node stack: the error line, a gap marker, the last lines; no frames', () => {
    const s = summarizeOutput(NODE_EADDRINUSE.split('\n'));
    assert.equal(
      s,
      [
        'Error: listen EADDRINUSE: address already in use 127.0.0.1:28126',
        '…',
        '  errno: -98,',
        "  syscall: 'listen',",
        "  address: '127.0.0.1',",
        '  port: 28126',
        '}',
        'Node.js v20.19.0',
      ].join('\n'),
    );
  });

  test('short output is kept whole (a Python traceback ends with its error)', () => {
    assert.equal(summarizeOutput(PYTHON.split('\n')), PYTHON);
  });

  test('output without an error line keeps its tail and marks the cut', () => {
    const lines = Array.from({ length: 20 }, (_, i) => `line ${i}`);
    assert.equal(summarizeOutput(lines, { tailLines: 2 }), '…\nline 18\nline 19');
  });

  test('the result is bounded, and still starts with the error line', () => {
    const lines = ['Error: boom', ...Array.from({ length: 50 }, () => 'x'.repeat(200))];
    const s = summarizeOutput(lines, { maxChars: 300 });
    assert.ok(s.length <= 300, `length ${s.length}`);
    assert.ok(s.startsWith('Error: boom\n…'));
  });
});

describe('excerpt', () => {
  test('over the cap, multi-line text keeps the error line instead of a byte window', () => {
    const e = excerpt(`${'warming up\n'.repeat(100)}${NODE_EADDRINUSE}`, 300);
    assert.ok(e.length <= 300);
    assert.match(e, /^Error: listen EADDRINUSE/);
  });
  test('short text is only trimmed; a long single line is cut with an ellipsis', () => {
    assert.equal(excerpt('  nope \n'), 'nope');
    assert.equal(excerpt('abcdef', 3), 'abc…');
  });
});

test('HeadTailLines keeps the first error line of a long stream and counts what it dropped', () => {
  const h = new HeadTailLines(3, 2);
  for (const l of ['starting', 'Error: listen EADDRINUSE', '    at x', 'a', 'b', 'c', 'd', 'exit']) h.push(l);
  assert.equal(h.omitted, 3);
  assert.equal(h.summary(), 'starting\nError: listen EADDRINUSE\n… 3 more lines …\nd\nexit');
  assert.equal(h.summary({ tailLines: 2 }), 'Error: listen EADDRINUSE\n…\nd\nexit');
});

test('URLs in excerpts and summaries have their credentials masked', () => {
  assert.equal(
    excerpt('fetch http://me:hunter2@hub/model?token=abc failed'),
    'fetch http://me:***@hub/model?token=*** failed',
  );
  assert.match(summarizeOutput(['Error: GET https://u:pw@x/?api_key=k failed']), /u:\*\*\*@x\/\?api_key=\*\*\*/);
});
