import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * The process logger: pino JSON on stdout (or on `destination`, e.g. the demo's log file). Secrets
 * never reach a log line: the redaction list covers every config and wire field that can hold one.
 */
export function createLogger(options: LoggerOptions = {}, destination?: DestinationStream): Logger {
  const settings: LoggerOptions = {
    level: process.env.LOG_LEVEL ?? 'info',
    base: { service: 'credit-edge' },
    redact: {
      paths: ['secret', '*.secret', 'password', '*.password', 'sipPassword', '*.sipPassword', 'token', '*.token', 'authorization', '*.authorization'],
      censor: '[redacted]',
    },
    ...options,
  };
  return destination ? pino(settings, destination) : pino(settings);
}

/** A logger that writes nothing: the default for library code and tests that do not pass one. */
export const silentLogger: Logger = pino({ level: 'silent' });
