/**
 * Command-line options, one way for every command: `--help`/`-h` prints the command's usage
 * (exit 0); an unknown option, a missing value or a stray argument is one line on stderr naming
 * the problem and pointing at `--help` (exit 2), never a stack trace.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { CliIo } from './io.ts';

type Options = NonNullable<ParseArgsConfig['options']>;

export type Parsed<O extends Options> =
  | {
      ok: true;
      values: ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>>['values'];
      positionals: string[];
    }
  | { ok: false; code: number };

/**
 * Parse `argv` for `command` (e.g. 'hestia keys'). `maxPositionals` bounds the operands. On
 * `--help` the usage is written to stdout and `{ok: false, code: 0}` returned.
 */
export function parseCommandArgs<O extends Options>(
  io: CliIo,
  command: string,
  usage: string,
  argv: string[],
  options: O,
  maxPositionals = 0,
): Parsed<O> {
  const withHelp = { ...options, help: { type: 'boolean', short: 'h' } } as O;
  let parsed: ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>>;
  try {
    parsed = parseArgs({ args: argv, options: withHelp, allowPositionals: true, strict: true });
  } catch (err) {
    io.stderr.write(`${command}: ${oneLine((err as Error).message)} (see ${command} --help)\n`);
    return { ok: false, code: 2 };
  }
  if ((parsed.values as { help?: boolean }).help === true) {
    io.stdout.write(usage);
    return { ok: false, code: 0 };
  }
  if (parsed.positionals.length > maxPositionals) {
    const extra = parsed.positionals[maxPositionals];
    io.stderr.write(`${command}: unexpected argument '${extra}' (see ${command} --help)\n`);
    return { ok: false, code: 2 };
  }
  return { ok: true, values: parsed.values, positionals: parsed.positionals };
}

/** node:util's messages can span lines and suggest `--` usage; keep the first sentence. */
function oneLine(message: string): string {
  const first = message.split('\n')[0] ?? message;
  return first.replace(/\. To specify a positional argument.*$/, '').replace(/\.$/, '');
}
