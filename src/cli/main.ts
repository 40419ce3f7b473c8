/**
 * `hestia <command>`: serve (default), check-config, keys, status.
 * Returns the process exit code; never calls process.exit itself, so tests can call it.
 */
import { parseArgs } from 'node:util';
import { checkConfigCommand } from './check-config.ts';
import { serveCommand } from './serve.ts';

const USAGE = `usage: hestia [serve] [--config FILE] [--watch]
       hestia check-config [FILE]
       hestia keys create NAME | list | revoke NAME
       hestia status [--url URL]
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
