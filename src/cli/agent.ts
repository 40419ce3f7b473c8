/**
 * `hestia agent [--listen ADDR:PORT] [--token-file FILE] [--state-dir DIR] [--tls-cert FILE
 * --tls-key FILE] [--max-processes N]` (SPEC §15): the agent on another machine. The token
 * comes from --token-file (first line; the file should be private) or HESTIA_AGENT_TOKEN; the
 * agent never runs without one. Logs JSON lines on stdout, `agent_listening` with the URL
 * once it serves. SIGTERM/SIGINT stop the agent; its processes keep running and the next agent
 * re-adopts them from the state file.
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { nvidiaSmiReader } from '../agent/resources.ts';
import { AgentServer } from '../agent/server.ts';
import { createLogger } from '../observability/logger.ts';
import { type CliIo, isProcessStdout, pathIn } from './io.ts';

const USAGE = `usage: hestia agent [--listen ADDR:PORT] [--token-file FILE] [--state-dir DIR]
                    [--tls-cert FILE --tls-key FILE] [--max-processes N]
  defaults: --listen 127.0.0.1:8090, --state-dir $XDG_STATE_HOME/hestia-agent
  the token: --token-file FILE, or the HESTIA_AGENT_TOKEN environment variable
`;

export function defaultStateDir(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_STATE_HOME || join(env.HOME || homedir(), '.local', 'state');
  return join(base, 'hestia-agent');
}

export function parseListen(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export async function agentCommand(args: string[], io: CliIo): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args,
      options: {
        listen: { type: 'string', default: '127.0.0.1:8090' },
        'token-file': { type: 'string' },
        'state-dir': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'max-processes': { type: 'string' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (err) {
    io.stderr.write(`hestia agent: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  const listen = parseListen(String(values.listen));
  if (!listen) {
    io.stderr.write(`hestia agent: --listen must be ADDR:PORT, got ${JSON.stringify(values.listen)}\n`);
    return 2;
  }
  let token = io.env.HESTIA_AGENT_TOKEN ?? '';
  const tokenFile = values['token-file'] as string | undefined;
  const log = createLogger({ ...(isProcessStdout(io) ? {} : { destination: io.stdout }) });
  if (tokenFile) {
    const path = pathIn(io, tokenFile);
    try {
      token = (readFileSync(path, 'utf8').split('\n')[0] ?? '').trim();
      if ((statSync(path).mode & 0o077) !== 0)
        log.warn({ event_type: 'agent_token_file_mode', file: path }, `${path} is readable by others: chmod 600 it`);
    } catch (err) {
      io.stderr.write(`hestia agent: cannot read --token-file ${path}: ${(err as Error).message}\n`);
      return 1;
    }
  }
  if (token === '') {
    io.stderr.write('hestia agent: no token: give --token-file FILE or set HESTIA_AGENT_TOKEN\n');
    return 2;
  }
  const cert = values['tls-cert'] as string | undefined;
  const key = values['tls-key'] as string | undefined;
  if ((cert === undefined) !== (key === undefined)) {
    io.stderr.write('hestia agent: --tls-cert and --tls-key go together\n');
    return 2;
  }
  let tls: { cert: Buffer; key: Buffer } | undefined;
  try {
    if (cert && key) tls = { cert: readFileSync(pathIn(io, cert)), key: readFileSync(pathIn(io, key)) };
  } catch (err) {
    io.stderr.write(`hestia agent: cannot read the TLS files: ${(err as Error).message}\n`);
    return 1;
  }
  const maxRaw = values['max-processes'] as string | undefined;
  const maxProcesses = maxRaw === undefined ? undefined : Number(maxRaw);
  if (maxProcesses !== undefined && !(Number.isInteger(maxProcesses) && maxProcesses > 0)) {
    io.stderr.write('hestia agent: --max-processes must be a positive integer\n');
    return 2;
  }
  const stateDir = pathIn(io, (values['state-dir'] as string | undefined) ?? defaultStateDir(io.env));
  let agent: AgentServer;
  let bound: { host: string; port: number };
  try {
    agent = new AgentServer({
      token,
      stateDir,
      log,
      version: version(),
      gpu: nvidiaSmiReader(),
      ...(tls ? { tls } : {}),
      ...(maxProcesses !== undefined ? { maxProcesses } : {}),
    });
    bound = await agent.listen(listen.port, listen.host);
  } catch (err) {
    io.stderr.write(`hestia agent: ${(err as Error).message}\n`);
    return 1;
  }
  const scheme = tls ? 'https' : 'http';
  const host = bound.host.includes(':') ? `[${bound.host}]` : bound.host;
  log.info(
    { event_type: 'agent_listening', url: `${scheme}://${host}:${bound.port}`, state_dir: stateDir },
    `hestia agent listening on ${scheme}://${host}:${bound.port}`,
  );
  await new Promise<void>((resolve) => {
    const onSignal = (sig: NodeJS.Signals) => {
      io.signals.off('SIGTERM', onSignal);
      io.signals.off('SIGINT', onSignal);
      log.info({ event_type: 'shutdown', signal: sig }, `received ${sig}, stopping the agent (processes keep running)`);
      agent.close().then(resolve, resolve);
    };
    io.signals.on('SIGTERM', onSignal);
    io.signals.on('SIGINT', onSignal);
  });
  log.flush();
  return 0;
}
