/**
 * JSON logs on pino: one object per line on stdout (SPEC §9). Secrets never reach a line:
 * header and config values that can carry keys are redacted by path, and the proxy never
 * logs raw headers in the first place.
 */
import { type DestinationStream, type Logger as PinoLogger, pino } from 'pino';

export type Logger = PinoLogger;
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export const REDACT_PATHS = [
  'headers.authorization',
  'headers["x-api-key"]',
  'headers.cookie',
  'headers["set-cookie"]',
  'req.headers.authorization',
  'req.headers["x-api-key"]',
  'req.headers.cookie',
  '*.password',
  '*.password_hash',
  '*.semaphore_password',
  '*.semaphore_api_key',
  '*.api_key',
  '*.token',
  'password',
  'api_key',
  'key',
  'authorization',
];

export interface LoggerOptions {
  level?: LogLevel | 'silent';
  /** Where lines go; stdout by default. Tests pass a stream to capture them. */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

/** A logger that drops everything (unit tests of pure-ish modules). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
