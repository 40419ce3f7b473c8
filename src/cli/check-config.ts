import { stringify } from 'yaml';
import { maskSecrets } from '../config/mask.ts';
import { type CliIo, loadConfigIn, withDefaults } from './io.ts';

/** `hestia check-config [FILE]`: validate, print the resolved config with secrets masked. */
export async function checkConfigCommand(argv: string[], io: CliIo = withDefaults()): Promise<number> {
  const path = argv.find((a) => !a.startsWith('-'));
  const loaded = loadConfigIn(io, path);
  if (!loaded.ok) {
    io.stderr.write(`${loaded.message}\n`);
    return 1;
  }
  for (const w of loaded.warnings) io.stderr.write(`warning: ${w}\n`);
  io.stdout.write(stringify(maskSecrets(loaded.config)));
  io.stderr.write(`config OK (${loaded.path ?? 'built-in defaults'})\n`);
  return 0;
}
