/**
 * `hestia <command>`: serve (default), check-config, keys, status.
 * Returns the process exit code; never calls process.exit itself, so tests can call it.
 */
import { parseArgs } from 'node:util';
import { checkConfigCommand } from './check-config.ts';
import { hashPasswordCommand } from './hash-password.ts';
import { keysCommand } from './keys.ts';
import { serveCommand } from './serve.ts';
import { statusCommand } from './status.ts';

const USAGE = `usage: hestia [serve] [--config FILE] [--watch]
       hestia check-config [FILE]
       hestia keys create NAME [--services ID,…] | list [--json] | revoke NAME   [--db FILE]
       hestia hash-password    (reads the password from the terminal or stdin)
       hestia status [--url URL] [--api-key KEY] [--json]   (services of a running gateway)
`;

export async function main(argv: string[]): Promise<number | undefined> {
  const [first, ...rest] = argv;
  const command = first === undefined || first.startsWith('-') ? 'serve' : first;
  const args = first === undefined || first.startsWith('-') ? argv : rest;
  switch (command) {
    case 'serve':
      return serveCommand(args);
    case 'check-config':
      return checkConfigCommand(args);
    case 'keys':
      return keysCommand(args);
    case 'hash-password':
      return hashPasswordCommand(args);
    case 'status':
      return statusCommand(args);
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`hestia: unknown command '${command}'\n${USAGE}`);
      return 2;
  }
}

export { parseArgs };
