import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createLogger, fixedShapeLogger } from '../../src/log.js';

/** The built module (npm test builds first): the lines must survive the exit of their own process. */
const builtLog = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/src/log.js');

/** Runs a Node process that logs `lines` lines through stdoutDestination(flushMs), then ends as `end` says; returns its stdout lines. */
function logThenEnd(flushMs: number, lines: number, end: 'exit' | 'throw' | 'return' | 'sigterm'): { out: string[]; status: number | null } {
  const finish = {
    exit: 'process.exit(0);',
    throw: "throw new Error('boom');",
    return: '',
    // As the edge stops on SIGTERM: a handler, then the process ends by itself.
    sigterm: "process.once('SIGTERM', () => {}); process.kill(process.pid, 'SIGTERM');",
  }[end];
  const script = `
    import { createLogger, stdoutDestination } from ${JSON.stringify(builtLog)};
    const logger = createLogger({ level: 'info' }, stdoutDestination(${flushMs}));
    for (let i = 0; i < ${lines}; i++) logger.info({ callId: 'c' + i }, 'decision');
    ${finish}`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  return { out: result.stdout.split('\n').filter((l) => l.length > 0), status: result.status };
}

/** A process logger whose lines are kept, parsed. */
function capture(): { lines: Record<string, unknown>[]; logger: ReturnType<typeof createLogger> } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { lines, logger };
}

describe('secrets never reach a log line', () => {
  it('the process logger redacts every secret field, at the top and one level down', () => {
    const { lines, logger } = capture();
    logger.info({ password: 'p1', token: 't1', redis: { password: 'p2' }, sip: { sipPassword: 'p3', secret: 's1' }, admin: { token: 't2', authorization: 'a1' } }, 'config');
    const text = JSON.stringify(lines[0]);
    for (const secret of ['p1', 't1', 'p2', 'p3', 's1', 't2', 'a1']) expect(text).not.toContain(`"${secret}"`);
    expect(lines[0]).toMatchObject({ password: '[redacted]', redis: { password: '[redacted]' }, sip: { sipPassword: '[redacted]', secret: '[redacted]' } });
  });

  it('the fixed-shape logger still redacts secret fields at the top, keeps the bindings and writes the fields as given', () => {
    const { lines, logger } = capture();
    const hot = fixedShapeLogger(logger.child({ component: 'edge' }));
    hot.info({ callId: 'c1', password: 'p1', sipPassword: 'p2', token: 't1', secret: 's1', authorization: 'a1' }, 'line');
    expect(lines[0]).toMatchObject({ service: 'credit-edge', component: 'edge', callId: 'c1', password: '[redacted]', sipPassword: '[redacted]', token: '[redacted]', secret: '[redacted]', authorization: '[redacted]', msg: 'line' });
    // The decision line's shape: nested objects and arrays come out unchanged.
    hot.info({ callId: 'c2', outcome: 'route', targets: ['sip:a@127.0.0.1'], basis: { source: 'replica', replica: 'r1', localCopy: true }, ms: 0.123 }, 'decision');
    expect(lines[1]).toMatchObject({ callId: 'c2', outcome: 'route', targets: ['sip:a@127.0.0.1'], basis: { source: 'replica', replica: 'r1', localCopy: true }, ms: 0.123, msg: 'decision' });
  });

  it('the fixed-shape logger leaves the parent as it was: lines through the parent keep the nested redaction', () => {
    const { lines, logger } = capture();
    fixedShapeLogger(logger);
    logger.child({ component: 'x' }).info({ redis: { password: 'p2' } }, 'after');
    expect(lines[0]).toMatchObject({ redis: { password: '[redacted]' } });
  });
});

describe('log lines gathered before they are written (log_flush_ms)', () => {
  for (const end of ['exit', 'throw', 'return', 'sigterm'] as const) {
    it(`loses no line when the process ends (${end}), even with a flush interval far longer than its life`, () => {
      const { out } = logThenEnd(60_000, 500, end);
      expect(out).toHaveLength(500);
      expect(out.map((l) => (JSON.parse(l) as { callId: string }).callId)).toEqual(Array.from({ length: 500 }, (_, i) => `c${i}`));
    });
  }

  it('with 0, writes each line as pino does by default', () => {
    const { out, status } = logThenEnd(0, 20, 'return');
    expect(status).toBe(0);
    expect(out).toHaveLength(20);
  });
});
