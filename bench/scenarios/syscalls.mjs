/**
 * Syscalls per request (optional; needs strace): `strace -c -f` attached to the gateway process
 * (Hestia's node process, nginx's worker) for a whole wrk run at c=32 with each body, then
 * divided by the requests completed. strace slows the gateway a lot, so req/s here mean nothing;
 * the counts per request do: they show how many reads/writes/epoll calls one proxied request
 * costs, which is most of the "native" self time in a CPU profile.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sleep } from '../lib/net.mjs';
import { spawnTracked, stopProc } from '../lib/procs.mjs';
import { runWrk } from '../lib/wrk.mjs';
import { BODIES } from './throughput.mjs';

function parseStraceSummary(text) {
  // Lines: "% time     seconds  usecs/call     calls    errors syscall"
  const rows = [];
  for (const line of text.split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$/.exec(line);
    if (m && m[3] !== 'total') rows.push({ syscall: m[3], calls: Number(m[1]), errors: Number(m[2] ?? 0) });
  }
  return rows;
}

export async function runSyscalls(ctx, stack) {
  const { opts, tmpDir, log } = ctx;
  const out = [];
  for (const body of opts.bodies)
    for (const leg of stack.legs.filter((l) => !l.unavailable && l.gatewayPid)) {
      const file = join(tmpDir, `strace-${leg.id}-${body}.txt`);
      // strace runs on the load core so it does not compete with the gateway it traces.
      const st = spawnTracked('strace', 'strace', ['-c', '-f', '-o', file, '-p', String(leg.gatewayPid)], {
        core: ctx.loadCore,
        logFile: join(tmpDir, `strace-${leg.id}-${body}.log`),
      });
      await sleep(500); // attach
      const w = await runWrk({
        url: leg.base + BODIES[body].path,
        connections: 32,
        durationS: opts.syscallsS,
        core: ctx.loadCore,
      });
      await stopProc(st, { signal: 'SIGINT', timeoutMs: 10_000 }); // SIGINT: detach and write the summary
      let rows = [];
      try {
        rows = parseStraceSummary(readFileSync(file, 'utf8'));
      } catch {
        /* no summary */
      }
      const total = rows.reduce((a, r) => a + r.calls, 0);
      const perReq = rows
        .map((r) => ({ ...r, perReq: r.calls / w.requests }))
        .sort((a, b) => b.calls - a.calls)
        .slice(0, 8);
      const row = { leg: leg.id, body, requests: w.requests, syscallsPerReq: total / w.requests, top: perReq };
      log(
        `  ${leg.id.padEnd(6)} ${row.syscallsPerReq.toFixed(2)} syscalls/request (${perReq.map((r) => `${r.syscall} ${r.perReq.toFixed(2)}`).join(', ')})`,
      );
      out.push(row);
    }
  return { rows: out };
}
