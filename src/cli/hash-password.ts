/**
 * `hestia hash-password`: read a password and print its scrypt hash for
 * `auth.dashboard.password_hash`.
 *
 * The password is never taken from argv (it would land in shell history and `ps`). From a
 * terminal it is prompted for twice without echo; from a pipe the whole of stdin is read and one
 * trailing newline removed (`printf '%s' pw | hestia hash-password` and `echo pw | …` agree).
 * The hash alone goes to stdout; prompts and notes go to stderr.
 */
import { hashPassword } from '../auth/password.ts';
import { type CliInput, type CliIo, type CliOutput, withDefaults } from './io.ts';

export async function hashPasswordCommand(argv: string[], io: CliIo = withDefaults()): Promise<number> {
  if (argv.length > 0) {
    io.stderr.write(
      'usage: hestia hash-password   (reads the password from the terminal or stdin, never from arguments)\n',
    );
    return 2;
  }
  let password: string;
  if (io.stdin.isTTY) {
    let first: string;
    let again: string;
    try {
      first = await promptHidden(io.stdin, io.stderr, 'Password: ');
      again = await promptHidden(io.stdin, io.stderr, 'Repeat password: ');
    } catch {
      return 130;
    }
    if (first !== again) {
      io.stderr.write('hestia hash-password: the passwords differ\n');
      return 1;
    }
    password = first;
  } else {
    password = (await readAll(io.stdin)).replace(/\r?\n$/, '');
  }
  if (password.length === 0) {
    io.stderr.write('hestia hash-password: empty password\n');
    return 1;
  }
  io.stdout.write(`${await hashPassword(password)}\n`);
  io.stderr.write('put this in auth.dashboard.password_hash\n');
  return 0;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** Read one line from the terminal in raw mode, echoing nothing. Ctrl-C / Ctrl-D abort. */
function promptHidden(stdin: CliInput, stderr: CliOutput, prompt: string): Promise<string> {
  stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let value = '';
    stdin.setRawMode?.(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (err?: Error) => {
      stdin.setRawMode?.(false);
      stdin.pause();
      stdin.off('data', onData);
      stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003' || ch === '\u0004') return done(new Error('aborted'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
