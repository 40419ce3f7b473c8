/** Render bench/caddy/Caddyfile into the temp dir and run Caddy (Debian's `caddy`) in the foreground. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitHttp } from './net.mjs';
import { spawnTracked, stopProc } from './procs.mjs';

const TEMPLATE = fileURLToPath(new URL('../caddy/Caddyfile', import.meta.url));

/** Start Caddy on 127.0.0.1:`port`, pinned to `core`. Resolves once it proxies; returns { proc, port }. */
export async function startCaddy({ tmpDir, port, vars, core }) {
  const dir = join(tmpDir, 'caddy');
  mkdirSync(dir, { recursive: true });
  const conf = join(dir, 'Caddyfile');
  const text = readFileSync(TEMPLATE, 'utf8').replace(/\{\{(\w+)\}\}/g, (m, k) => {
    if (!(k in { PORT: 1, ...vars })) throw new Error(`Caddyfile template: no value for ${m}`);
    return String(k === 'PORT' ? port : vars[k]);
  });
  writeFileSync(conf, text);
  // Caddy's own state (certificates, autosave) goes to the temp dir, not the user's home.
  const env = { PATH: process.env.PATH, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir };
  const proc = spawnTracked('caddy', 'caddy', ['run', '--config', conf, '--adapter', 'caddyfile'], {
    core,
    env,
    logFile: join(dir, 'caddy.log'),
  });
  try {
    await waitHttp(`http://127.0.0.1:${port}/services/bench/small`, {
      timeoutMs: 15_000,
      isDead: () => proc.exitInfo !== null,
    });
  } catch (err) {
    await stopProc(proc);
    throw new Error(`caddy did not start: ${err.message} (log: ${join(dir, 'caddy.log')})`);
  }
  return { proc, port };
}
