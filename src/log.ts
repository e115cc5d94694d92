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

/** Bytes of log lines gathered before they are written (lines of about 400 bytes: about ten). */
const GATHER_BYTES = 4096;

/**
 * Where the edge and the controller write their lines: stdout, each line written at once when
 * `flushMs` is 0 (pino's default), else lines gathered and written together, once GATHER_BYTES
 * are waiting or `flushMs` after the last write, whichever comes first. pino writes stdout from
 * a worker thread, and each write costs a thread hand-off and a wake-up of the event loop: with
 * one line per INVITE that was the largest share of the edge's CPU per call after the SIP
 * messages themselves. What is gathered is written on exit (normal, signal-driven or an uncaught
 * exception); only a hard kill (SIGKILL, OOM) loses at most `flushMs` of lines.
 */
export function stdoutDestination(flushMs: number): DestinationStream {
  if (flushMs <= 0) return pino.destination({ dest: 1, sync: false });
  return pino.destination({ dest: 1, sync: false, minLength: GATHER_BYTES, periodicFlush: flushMs });
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
