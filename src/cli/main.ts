/**
 * `hestia <command>`: serve (default), check-config, keys, hash-password, status.
 * Returns the process exit code; never calls process.exit itself. Everything a command touches
 * of the process (stdout, stderr, stdin, env, cwd, signals) comes from `io`, so tests run the
 * commands in-process with `runCli(argv, io)`.
 */
import { parseArgs } from 'node:util';
import { agentCommand } from './agent.ts';
import { checkConfigCommand } from './check-config.ts';
import { hashPasswordCommand } from './hash-password.ts';
import { type CliIo, withDefaults } from './io.ts';
import { keysCommand } from './keys.ts';
import { serveCommand } from './serve.ts';
import { statusCommand } from './status.ts';

const USAGE = `usage: hestia [serve] [--config FILE] [--watch]
       hestia check-config [FILE]
       hestia keys create NAME [--services ID,…] | list [--json] | revoke NAME   [--db FILE]
       hestia hash-password    (reads the password from the terminal or stdin)
       hestia status [--url URL] [--api-key KEY] [--json]   (services of a running gateway)
       hestia agent [--listen ADDR:PORT] [--token-file FILE] [--state-dir DIR]   (on another machine)
`;

export async function main(argv: string[], io: CliIo = withDefaults()): Promise<number | undefined> {
  const [first, ...rest] = argv;
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
    case 'help':
    case '--help':
      io.stdout.write(USAGE);
      return 0;
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
