import path from 'node:path';
import { pino } from 'pino';
import type { Logger } from '../src/log.js';

/**
 * What every benchmark run has around it: the runner's own log (runner.log in the run directory:
 * topology, faults, operator actions) and a watchdog, so a run that hangs fails at a bound and
 * its `finally` stops everything it started.
 */
export function runnerLog(runDir: string, base: Record<string, unknown>): { logger: Logger; close(): void } {
  const dest = pino.destination({ dest: path.join(runDir, 'runner.log'), sync: false, minLength: 8192 });
  return {
    logger: pino({ level: 'info', base }, dest),
    close() {
      dest.flushSync();
      dest.end();
    },
  };
}

/** `work`, or a rejection once `limitS` seconds have passed. */
export async function within<T>(limitS: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${limitS} s`)), limitS * 1000);
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}
