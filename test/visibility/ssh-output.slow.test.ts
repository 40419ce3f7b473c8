/**
 * SPEC §12 output capture with the `ssh` launcher against the real sshd on 127.0.0.1:2222
 * (scripts/ci/setup-sshd.sh): the start command's stdout/stderr and the `log_command` followed
 * while hot reach `GET /v1/services/{id}/logs`; a stop keeps the lines written while stopping,
 * then ends the remote follow.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import type { OutputLine } from '../../src/observability/output-ring.ts';
import { CI_DIR, requireOrSkip, SSH_DIR, sshdUnavailable } from '../helpers/backends.ts';
import { EventRecorder } from '../helpers/events.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { killPid, LAUNCHED_SERVER } from '../helpers/launchers.ts';
import { freePort } from '../helpers/net.ts';
import { waitFor } from '../helpers/wait.ts';

const skip = requireOrSkip('sshd on 127.0.0.1:2222', await sshdUnavailable());
const RUN_DIR = `${CI_DIR}/ssh/visibility-${process.pid}`;

function tailRunning(file: string): boolean {
  try {
    execFileSync('pgrep', ['-f', `tail -n \\+1 -F ${file}`]);
    return true;
  } catch {
    return false;
  }
}

describe('ssh output capture (real sshd)', { skip }, () => {
  after(() => {
    try {
      for (const f of ['srv.pid']) killPid(Number(readFileSync(`${RUN_DIR}/${f}`, 'utf8').trim()));
    } catch {
      /* not started */
    }
    rmSync(RUN_DIR, { recursive: true, force: true });
  });

  test('start command output and the log_command reach /logs; stop ends the follow', async (t) => {
    mkdirSync(RUN_DIR, { recursive: true });
    const port = await freePort();
    const logFile = `${RUN_DIR}/srv.log`;
    const gw = await startTestGateway({
      machines: {
        box: {
          host: '127.0.0.1',
          ssh: {
            user: 'root',
            port: 2222,
            identity_file: `${SSH_DIR}/client_key`,
            known_hosts: `${SSH_DIR}/known_hosts`,
          },
        },
      },
      services: {
        remote: {
          base_url: `http://127.0.0.1:${port}`,
          health_url: `http://127.0.0.1:${port}/`,
          health_interval_ms: 50,
          machines: ['box'],
          launcher: {
            type: 'ssh',
            command: `cd ${RUN_DIR} || exit 1; echo 'launching the server'; echo 'remote warning' >&2; setsid nohup sh -c 'echo server booting; exec /usr/bin/node ${LAUNCHED_SERVER} {port} tok' </dev/null >srv.log 2>&1 & echo $! > srv.pid`,
            // The server's last log line is written as it stops: it must reach the ring.
            stop_command: `echo 'server stopping: goodbye' >> ${logFile}; kill $(cat ${RUN_DIR}/srv.pid)`,
            log_command: `tail -n +1 -F ${logFile}`,
            timeout_ms: 20_000,
          },
        },
      },
    });
    t.after(() => gw.close());
    const events = new EventRecorder(gw.ctx.bus);
    const ring = gw.ctx.services.get('remote')!.output!();
    const seen = (pred: (l: OutputLine) => boolean) =>
      new Promise<void>((resolve) => {
        if (ring.tail().some(pred)) return resolve();
        const off = ring.subscribe((l) => {
          if (pred(l)) {
            off();
            resolve();
          }
        });
      });

    assert.equal((await fetch(`${gw.url}/v1/services/remote/start`, { method: 'POST' })).status, 202);
    await events.nth('service_ready', 1);
    await seen((l) => l.stream === 'log' && l.text === 'server booting');
    appendFileSync(logFile, 'request served\n');
    await seen((l) => l.stream === 'log' && l.text === 'request served');

    const lines = ((await (await fetch(`${gw.url}/v1/services/remote/logs`)).json()) as { lines: OutputLine[] }).lines;
    // stdout and stderr are two channels: their relative order is not defined.
    assert.deepEqual(
      lines.map((l) => [l.stream, l.text]).sort(),
      [
        ['stdout', 'launching the server'],
        ['stderr', 'remote warning'],
        ['log', 'server booting'],
        ['log', 'request served'],
      ].sort(),
    );
    assert.deepEqual(
      lines.filter((l) => l.stream === 'log').map((l) => l.text),
      ['server booting', 'request served'],
    );

    assert.ok(tailRunning(logFile), 'the remote follow runs while hot');
    assert.equal((await fetch(`${gw.url}/v1/services/remote/stop`, { method: 'POST' })).status, 202);
    await events.nth('service_stopped', 1);
    // No wait here: the stop completed only after the follow delivered what the stop wrote.
    assert.ok(
      ring.tail().some((l) => l.stream === 'log' && l.text === 'server stopping: goodbye'),
      JSON.stringify(ring.tail()),
    );
    // Nothing signals the remote tail's end to us: a bounded poll.
    await waitFor(async () => !tailRunning(logFile), { message: 'the remote tail to end' });
  });
});
