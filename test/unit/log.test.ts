import { describe, expect, it } from 'vitest';
import { createLogger, fixedShapeLogger } from '../../src/log.js';

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
