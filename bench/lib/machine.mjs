/** Machine notes for the results: what the numbers were measured on. */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { getGatewayRoot } from './hestia.mjs';

const run = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: getGatewayRoot() });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
};
const git = (args) => {
  const r = spawnSync('git', args, { encoding: 'utf8', cwd: getGatewayRoot() });
  return r.status === 0 ? r.stdout.trim() : null;
};

/**
 * Brings `root`'s dist/ up to date with its sources (scripts/build.mjs, ~0.2 s), so the
 * benchmark measures what an install runs: a stale dist/ would make bin/hestia.mjs fall back to
 * tsx, whose loader adds ~30 MiB of RSS and compiles differently. Returns the build's own line;
 * throws when the build fails.
 */
export function buildDist(root) {
  if (!existsSync(`${root}/scripts/build.mjs`)) return `${root}: no scripts/build.mjs`;
  const r = spawnSync(process.execPath, ['scripts/build.mjs'], { encoding: 'utf8', cwd: root });
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  // A failed build would leave the old bundle or tsx to be measured as if it were this code.
  if (r.status !== 0) throw new Error(`building ${root}/dist failed (exit ${r.status}): ${out}`);
  return out;
}

/**
 * How bin/hestia.mjs will run the gateway: the dist/ bundle when it is current (what an install
 * runs; ~30-40 MiB less RSS and ~1 s quicker start), else the TypeScript sources through tsx.
 */
export function gatewayMode(root = getGatewayRoot()) {
  try {
    const info = JSON.parse(readFileSync(`${root}/dist/build-info.json`, 'utf8'));
    const r = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { sourceFingerprint } from ${JSON.stringify(`${root}/scripts/source-fingerprint.mjs`)}; process.stdout.write(sourceFingerprint(${JSON.stringify(`${root}/`)}));`,
      ],
      { encoding: 'utf8' },
    );
    return r.stdout === info.fingerprint ? 'dist/ bundle' : 'sources through tsx (dist/ is stale: npm run build)';
  } catch {
    return 'sources through tsx (no dist/: npm run build)';
  }
}

export function machineNotes() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown';
  return {
    // All online CPUs, not this process's affinity (the orchestrator pins itself to one core).
    nproc: os.cpus().length,
    cpuModel: model,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    nginx: run('nginx', ['-v']).replace(/^nginx version:\s*/, ''),
    wrk: run('wrk', ['-v']).split('\n')[0].split(' Copyright')[0],
    memTotalGiB: Math.round(os.totalmem() / 2 ** 30),
    loadavgAtStart: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    // null when the gateway root is not a git checkout (e.g. a `git archive` of a branch).
    gitCommit: git(['rev-parse', '--short', 'HEAD']),
    gitBranch: git(['rev-parse', '--abbrev-ref', 'HEAD']),
    gitDirty: (git(['status', '--porcelain', '--', 'src', 'bin']) ?? '').length > 0,
    // The last component only: results are shared, machine-specific paths are not.
    gatewayMode: gatewayMode(),
    gatewayRoot: `…/${getGatewayRoot().replace(/\/+$/, '').split('/').at(-1)}`,
  };
}

/**
 * Per-core busy time from /proc/stat, in ticks: `cores[i] = { busy, total }`. Used to see how
 * much of the gateway's core other tenants of this shared machine took during a cell.
 */
export function perCoreSnapshot() {
  const cores = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const f = m[2].trim().split(/\s+/).map(Number);
    const idle = f[3] + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal (guest is inside user)
    cores[Number(m[1])] = { busy: total - idle, total, steal: f[7] ?? 0 };
  }
  return cores;
}
/** Share of core `i` that was busy between two snapshots (0..1), and the share stolen by the host. */
export function coreBusy(prev, next, i) {
  const a = prev[i];
  const b = next[i];
  if (!a || !b || b.total === a.total) return { busy: null, steal: null };
  return { busy: (b.busy - a.busy) / (b.total - a.total), steal: (b.steal - a.steal) / (b.total - a.total) };
}

/** Busy share of all cores since `prev` (from /proc/stat), to flag a machine shared with others. */
export function cpuBusySnapshot() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + (f[4] ?? 0);
  const total = f.reduce((a, b) => a + b, 0);
  return { idle, total };
}
export function busyShare(prev, next) {
  const dt = next.total - prev.total;
  return dt > 0 ? 1 - (next.idle - prev.idle) / dt : null;
}

/** What the benchmark needs on PATH; returns the missing Debian packages. */
export function missingTools({ pin }) {
  const need = [
    ['nginx', 'nginx-light'],
    ['wrk', 'wrk'],
  ];
  if (pin) need.push(['taskset', 'util-linux']);
  return need.filter(([bin]) => spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0).map(([, pkg]) => pkg);
}
