import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** The field names that can hold a secret, wherever they appear in a config or on the wire. */
const SECRET_FIELDS = ['secret', 'password', 'sipPassword', 'token', 'authorization'];
const CENSOR = '[redacted]';

/**
 * The process logger: pino JSON on stdout (or on `destination`, e.g. the demo's log file). Secrets
 * never reach a log line: the redaction list covers every config and wire field that can hold one.
 */
export function createLogger(options: LoggerOptions = {}, destination?: DestinationStream): Logger {
  const settings: LoggerOptions = {
    level: process.env.LOG_LEVEL ?? 'info',
    base: { service: 'credit-edge' },
    redact: { paths: [...SECRET_FIELDS, ...SECRET_FIELDS.map((f) => `*.${f}`)], censor: CENSOR },
    ...options,
  };
  return destination ? pino(settings, destination) : pino(settings);
}

/**
 * A child of `logger` for a hot line whose fields are fixed and typed (the edge's decision line):
 * the secret fields are still redacted at the top level, but not searched for one level down.
 * The wildcard paths make pino check every field of every line (about half a line's cost); a
 * line built only from fields that cannot hold an object with a secret in it does not need them.
 * Anything else logs through `logger` itself.
 */
export function fixedShapeLogger(logger: Logger, bindings: Record<string, unknown> = {}): Logger {
  return logger.child(bindings, { redact: { paths: SECRET_FIELDS, censor: CENSOR } });
}

/** A logger that writes nothing: the default for library code and tests that do not pass one. */
export const silentLogger: Logger = pino({ level: 'silent' });
