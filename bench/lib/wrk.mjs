/** Run wrk (one thread, pinned) against a URL and return its numbers. */
import { fileURLToPath } from 'node:url';
import { spawnTracked } from './procs.mjs';

const REPORT_LUA = fileURLToPath(new URL('../wrk/report.lua', import.meta.url));

/**
 * `script` (default: wrk/report.lua) may set the request (method, body) and must report like it;
 * `env` adds variables for it.
 * @returns {Promise<{requests:number, durationS:number, rps:number, p50Ms:number, p90Ms:number,
 *   p99Ms:number, maxMs:number, meanMs:number, bytes:number, errors:number, nonOk:number}>}
 */
export function runWrk({ url, connections, durationS, core, timeoutS = 10, script = REPORT_LUA, env }) {
  // One wrk thread: the load generator shares core 0 with the upstream, and more threads on one
  // core only add context switches. (wrk needs connections >= threads.)
  const args = ['-t1', `-c${connections}`, `-d${durationS}s`, '--timeout', `${timeoutS}s`, '-s', script, url];
  const proc = spawnTracked('wrk', 'wrk', args, {
    core,
    captureStdout: true,
    env: env ? { ...process.env, ...env } : undefined,
  });
  const chunks = [];
  proc.child.stdout.on('data', (c) => chunks.push(c));
  return proc.exited.then(({ code, signal, error }) => {
    const out = Buffer.concat(chunks).toString('utf8');
    const line = out.split('\n').find((l) => l.startsWith('WRKJSON '));
    if (error || code !== 0 || !line) {
      throw new Error(`wrk failed (code ${code}, signal ${signal}): ${error?.message ?? out.slice(-500)}`);
    }
    const j = JSON.parse(line.slice('WRKJSON '.length));
    const durationS = j.duration_us / 1e6;
    return {
      requests: j.requests,
      durationS,
      rps: j.requests / durationS,
      p50Ms: j.p50_us / 1000,
      p90Ms: j.p90_us / 1000,
      p99Ms: j.p99_us / 1000,
      maxMs: j.max_us / 1000,
      meanMs: j.mean_us / 1000,
      bytes: j.bytes,
      // Socket-level failures; non-2xx/3xx answers are counted separately (nonOk).
      errors: j.err_connect + j.err_read + j.err_write + j.err_timeout,
      nonOk: j.err_status,
    };
  });
}
