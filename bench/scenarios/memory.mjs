/**
 * Memory under a large transfer: 1 GiB downloaded (the upstream generates it) and 1 GiB
 * uploaded (this process streams it with backpressure, content-length set, like `curl -T`)
 * through the gateway, while the gateway's VmRSS is sampled every 50 ms. Flat means the peak
 * stays within ±32 MiB of the RSS just before the transfer. The direct leg gives the
 * loopback's own speed for reference.
 */
import http from 'node:http';
import { nowMs } from '../lib/net.mjs';
import { memKiB, startRssSampler } from '../lib/procs.mjs';

const CHUNK = Buffer.alloc(64 * 1024, 'upload-bytes-');

function download(url, bytes) {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    http
      .get(`${url}/download?bytes=${bytes}`, { agent: false }, (res) => {
        let got = 0;
        res.on('data', (c) => {
          got += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode, bytes: got, ms: nowMs() - t0 }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

function upload(url, bytes) {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const req = http.request(
      `${url}/upload`,
      {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/octet-stream', 'content-length': bytes },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          let counted = null;
          try {
            counted = JSON.parse(Buffer.concat(chunks).toString('utf8')).bytes;
          } catch {
            /* not the upstream's answer */
          }
          resolve({ status: res.statusCode, bytes: counted, ms: nowMs() - t0 });
        });
      },
    );
    req.on('error', reject);
    let left = bytes;
    // Write only while the socket accepts more: the client must not be the one buffering.
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, CHUNK.length);
        left -= n;
        if (!req.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

export async function runMemory(ctx, stack) {
  const { opts, log } = ctx;
  const bytes = opts.transferMiB * 1024 * 1024;
  const out = [];
  for (const leg of stack.legs.filter((l) => !l.unavailable && l.node && l.id !== 'nginx')) {
    for (const dir of ['download', 'upload']) {
      const pid = leg.gatewayPid;
      const before = pid ? memKiB(pid)?.rssKiB : null;
      const sampler = pid ? startRssSampler([pid], 50) : null;
      let r;
      try {
        r = dir === 'download' ? await download(leg.node, bytes) : await upload(leg.node, bytes);
      } catch (err) {
        r = { status: 0, bytes: 0, ms: 0, error: err.message };
      }
      const st = sampler?.stop().get(pid);
      const row = {
        leg: leg.id,
        dir,
        status: r.status,
        complete: r.status === 200 && r.bytes === bytes,
        MiBps: r.ms > 0 ? bytes / 2 ** 20 / (r.ms / 1000) : null,
        rssBeforeMiB: before !== null && before !== undefined ? before / 1024 : null,
        rssPeakMiB: st ? st.maxKiB / 1024 : null,
        rssAfterMiB: st ? st.lastKiB / 1024 : null,
        rssGrowthMiB: st && before ? (st.maxKiB - before) / 1024 : null,
        error: r.error,
      };
      log(
        `  ${leg.id.padEnd(6)} ${dir.padEnd(8)} ${row.complete ? 'complete' : `INCOMPLETE (HTTP ${r.status}, ${r.bytes} bytes)`}` +
          ` ${row.MiBps?.toFixed(0)} MiB/s` +
          (row.rssPeakMiB !== null
            ? `  RSS ${row.rssBeforeMiB?.toFixed(0)} → peak ${row.rssPeakMiB.toFixed(0)} MiB`
            : ''),
      );
      out.push(row);
    }
  }
  return { rows: out };
}
