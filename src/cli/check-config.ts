import { dump } from 'js-yaml';
import { maskSecrets } from '../config/mask.ts';
import { parseCommandArgs } from './args.ts';
import { type CliIo, loadConfigIn, withDefaults } from './io.ts';

const USAGE = `usage: hestia check-config [FILE | --config FILE]
  Validate the config (default: $HESTIA_CONFIG_PATH, else ./hestia_config.yml) and print it
  resolved, secrets masked. Exit 0 when valid, 1 when not.
`;

/** `hestia check-config [FILE]`: validate, print the resolved config with secrets masked. */
export async function checkConfigCommand(argv: string[], io: CliIo = withDefaults()): Promise<number> {
  const parsed = parseCommandArgs(
    io,
    'hestia check-config',
    USAGE,
    argv,
    { config: { type: 'string', short: 'c' } },
    1,
  );
  if (!parsed.ok) return parsed.code;
  const loaded = loadConfigIn(io, parsed.values.config ?? parsed.positionals[0]);
  if (!loaded.ok) {
    io.stderr.write(`${loaded.message}\n`);
    return 1;
  }
  for (const w of loaded.warnings) io.stderr.write(`warning: ${w}\n`);
  // noRefs: a value shared by two services is printed at both, not as an alias; skipInvalid:
  // unset optional fields (undefined) are left out, as in the file.
  io.stdout.write(dump(maskSecrets(loaded.config), { noRefs: true, skipInvalid: true, lineWidth: -1 }));
  io.stderr.write(`config OK (${loaded.path ?? 'built-in defaults'})\n`);
  return 0;
}
