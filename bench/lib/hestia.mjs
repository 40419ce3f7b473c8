/** Start the Hestia gateway under test: `node bin/hestia.mjs serve --config FILE`, pinned. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, HOST, waitHttp } from './net.mjs';
import { spawnTracked, stopProc } from './procs.mjs';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Extra node flags for every gateway (--gateway-node-args), e.g. V8 heap settings to try. */
let extraNodeArgs = [];
export function setGatewayNodeArgs(args) {
  extraNodeArgs = args;
}
/** Extra node flags for the base leg instead (--base-node-args); null = the same as the others. */
let baseNodeArgs = null;
export function setBaseNodeArgs(args) {
  baseNodeArgs = args;
}

/** The checkout whose bin/hestia.mjs is benchmarked (--gateway-root; default this repository). */
let gatewayRoot = REPO_ROOT;
export function setGatewayRoot(dir) {
  gatewayRoot = dir;
}
export function getGatewayRoot() {
  return gatewayRoot;
}

/**
 * @param {object} o
 * @param {string} o.name       label for logs/files
 * @param {object} o.config     the config object (written as JSON, which is valid YAML)
 * @param {string} o.tmpDir
 * @param {number} o.core       core to pin the gateway to
 * @param {string} [o.cpuProfDir] run with --cpu-prof, writing the profile there on exit
 * @param {string} [o.root]     checkout to run (default: the --gateway-root one; --base-root for the base leg)
 * @param {boolean} [o.base]    the base leg (--base-node-args apply)
 * @returns {Promise<{proc, port, url, logFile, stop: () => Promise<object>}>}
 */
export async function startHestia({ name, config, tmpDir, core, cpuProfDir, root = gatewayRoot, base = false }) {
  const port = await freePort();
  const configFile = join(tmpDir, `hestia-${name}.yml`);
  writeFileSync(configFile, `${JSON.stringify(config, null, 2)}\n`);
  const logFile = join(tmpDir, `hestia-${name}.log`);
  // A small, explicit environment: the gateway reads <ID>_<FIELD> variables as service
  // overrides, so the developer's shell must not leak into the benchmark.
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    HESTIA_HOST: HOST,
    HESTIA_PORT: String(port),
    HESTIA_DB_PATH: join(tmpDir, `hestia-${name}.db`),
    // Logging is not what we measure: warn keeps per-request lines out of the hot path.
    HESTIA_LOG_LEVEL: 'warn',
  };
  // --trace-gc: one line per GC in the log, so the throughput cells can count major GCs (the
  // cause of the tail on large bodies, bench/README.md).
  const nodeArgs = ['--trace-gc', ...(base && baseNodeArgs !== null ? baseNodeArgs : extraNodeArgs)];
  if (cpuProfDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`);
  nodeArgs.push(join(root, 'bin/hestia.mjs'), 'serve', '--config', configFile);
  const proc = spawnTracked(`hestia-${name}`, process.execPath, nodeArgs, { core, env, cwd: root, logFile });
  const url = `http://${HOST}:${port}`;
  try {
    await waitHttp(`${url}/healthz`, { timeoutMs: 60_000, isDead: () => proc.exitInfo !== null });
  } catch (err) {
    await stopProc(proc);
    throw new Error(`gateway '${name}' did not become healthy: ${err.message} (log: ${logFile})`);
  }
  return {
    proc,
    port,
    url,
    logFile,
    configFile,
    // SIGTERM = graceful shutdown (and lets --cpu-prof write its profile).
    stop: () => stopProc(proc, { signal: 'SIGTERM', timeoutMs: 15_000 }),
  };
}
