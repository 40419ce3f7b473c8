/**
 * `hestia <command>`: serve (default), check-config, keys, hash-password, status.
 * Returns the process exit code; never calls process.exit itself. Everything a command touches
 * of the process (stdout, stderr, stdin, env, cwd, signals) comes from `io`, so tests run the
 * commands in-process with `runCli(argv, io)`.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { agentCommand } from './agent.ts';
import { checkConfigCommand } from './check-config.ts';
import { hashPasswordCommand } from './hash-password.ts';
import { type CliIo, withDefaults } from './io.ts';
import { keysCommand } from './keys.ts';
import { serveCommand } from './serve.ts';
import { statusCommand } from './status.ts';

const USAGE = `usage: hestia [serve] [--config FILE] [--port PORT] [--host HOST] [--watch]
       hestia check-config [FILE]
       hestia keys create NAME [--services ID,…] | list [--json] | revoke NAME   [--db FILE]
       hestia hash-password    (reads the password from the terminal or stdin)
       hestia status [--url URL] [--config FILE] [--api-key KEY] [--json]   (services of a running gateway)
       hestia agent [--listen ADDR:PORT] [--token-file FILE] [--state-dir DIR]   (on another machine)
       hestia --version
Every command takes --help.
`;

/** The package's version (package.json, one directory above both src/ and dist/). */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

export async function main(argv: string[], io: CliIo = withDefaults()): Promise<number | undefined> {
  try {
    return await run(argv, io);
  } catch (err) {
    // A command's unexpected failure is one line, never a stack trace (the message says what).
    io.stderr.write(`hestia: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

async function run(argv: string[], io: CliIo): Promise<number | undefined> {
  const [first, ...rest] = argv;
  switch (first) {
    case 'help':
    case '--help':
    case '-h':
      io.stdout.write(USAGE);
      return 0;
    case 'version':
    case '--version':
    case '-V':
      io.stdout.write(`hestia ${packageVersion()}\n`);
      return 0;
  }
  const command = first === undefined || first.startsWith('-') ? 'serve' : first;
  const args = first === undefined || first.startsWith('-') ? argv : rest;
  switch (command) {
    case 'serve':
      return serveCommand(args, io);
    case 'check-config':
      return checkConfigCommand(args, io);
    case 'keys':
      return keysCommand(args, io);
    case 'hash-password':
      return hashPasswordCommand(args, io);
    case 'status':
      return statusCommand(args, io);
    case 'agent':
      return agentCommand(args, io);
    default:
      io.stderr.write(`hestia: unknown command '${command}'\n${USAGE}`);
      return 2;
  }
}

/** `main` with the process parts the caller gives (the rest from the real process); the exit code. */
export async function runCli(argv: string[], io: Partial<CliIo> = {}): Promise<number> {
  return (await main(argv, withDefaults(io))) ?? 0;
}

export type { CliIo } from './io.ts';
export { parseArgs };
