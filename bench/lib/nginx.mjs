/** Render the nginx configs in bench/nginx/ into a temp prefix and run nginx in the foreground. */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOST, sleep } from './net.mjs';
import { childPids, spawnTracked, stopProc } from './procs.mjs';

const CONF_DIR = fileURLToPath(new URL('../nginx/', import.meta.url));

function render(template, vars) {
  return template.replace(/\{\{(\w+)\}\}/g, (m, k) => {
    if (!(k in vars)) throw new Error(`nginx template: no value for ${m}`);
    return String(vars[k]);
  });
}

/**
 * Start nginx with bench/nginx/<name>.conf in its own prefix under `tmpDir`. Resolves once it
 * listens; returns { proc (the master), workerPid, port, prefix }.
 */
export async function startNginx({ name, tmpDir, port, vars, core, files = {} }) {
  const prefix = join(tmpDir, `nginx-${name}`);
  mkdirSync(join(prefix, 'www'), { recursive: true });
  // nginx started as root runs its worker as 'nobody': the prefix must be readable by it.
  chmodSync(tmpDir, 0o755);
  chmodSync(prefix, 0o755);
  chmodSync(join(prefix, 'www'), 0o755);
  for (const [file, content] of Object.entries(files)) {
    writeFileSync(join(prefix, 'www', file), content, { mode: 0o644 });
  }
  const conf = join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    render(readFileSync(join(CONF_DIR, `${name}.conf`), 'utf8'), { PREFIX: prefix, PORT: port, ...vars }),
  );
  // -e: the error log before the config is read (nginx would otherwise try /var/log/nginx).
  const proc = spawnTracked(`nginx-${name}`, 'nginx', ['-p', prefix, '-c', conf, '-e', join(prefix, 'error.log')], {
    core,
    logFile: join(prefix, 'stdout.log'),
  });
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (proc.exitInfo) break;
    const workers = childPids(proc.pid);
    if (workers.length > 0 && (await canConnect(port))) return { proc, workerPid: workers[0], port, prefix };
    await sleep(25);
  }
  await stopProc(proc);
  let log = '';
  try {
    log = readFileSync(join(prefix, 'error.log'), 'utf8').slice(-2000);
  } catch {
    /* none */
  }
  throw new Error(`nginx (${name}) did not start on ${HOST}:${port}:\n${log}`);
}

async function canConnect(port) {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.connect(port, HOST);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
