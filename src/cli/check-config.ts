import { stringify } from 'yaml';
import { loadConfig } from '../config/loader.ts';
import { maskSecrets } from '../config/mask.ts';

/** `hestia check-config [FILE]`: validate, print the resolved config with secrets masked. */
export async function checkConfigCommand(argv: string[]): Promise<number> {
  const path = argv.find((a) => !a.startsWith('-'));
  const loaded = loadConfig({ path, env: process.env });
  if (!loaded.ok) {
    process.stderr.write(`${loaded.message}\n`);
    return 1;
  }
  for (const w of loaded.warnings) process.stderr.write(`warning: ${w}\n`);
  process.stdout.write(stringify(maskSecrets(loaded.config)));
  process.stderr.write(`config OK (${loaded.path ?? 'built-in defaults'})\n`);
  return 0;
}
