import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCallRecord } from '../../src/calls/records.js';
import { parseTotals } from '../../src/calls/totals.js';
import { assessTotals, totalsOf } from '../../src/control/projection.js';

const T0 = 1_700_000_000_000;

describe('call totals', () => {
  it('property: the projection from the totals is the sum over the records (rate x minutes so far)', () => {
    const call = fc.record({ minutesAgo: fc.integer({ min: 0, max: 600 }), rate: fc.option(fc.integer({ min: 0, max: 5000 }).map((n) => n / 1000), { nil: undefined }) });
    fc.assert(
      fc.property(fc.array(call, { maxLength: 40 }), fc.integer({ min: 0, max: 5000 }), (calls, accountRateMilli) => {
        const accountRate = accountRateMilli / 1000;
        const records = Object.fromEntries(
          calls.map((c, i) => [`c${i}`, encodeCallRecord({ callId: `c${i}`, account: 'a', start: T0 - c.minutesAgo * 60_000, node: 'e', instance: 'i', ...(c.rate !== undefined && { rate: c.rate }) })]),
        );
        const direct = calls.reduce((sum, c) => sum + (c.rate ?? accountRate) * c.minutesAgo, 0);
        const a = assessTotals({ accountId: 'a', account: { enabled: '1', balance: '100000', rate: String(accountRate) }, totals: totalsOf(records).totals }, T0);
        expect(a.kind).toBe('funded');
        if (a.kind === 'funded') expect(a.spent).toBeCloseTo(direct, 5);
      }),
    );
  });

  it('an empty totals hash is no calls; a field that does not parse makes them unreadable', () => {
    expect(parseTotals({})).toMatchObject({ calls: 0 });
    expect(parseTotals({ calls: '2', bad: '0', base: '1', rated: '0.5', rated_t: '3', unrated: '0', unrated_t: '0' })).toMatchObject({ calls: 2, rated: 0.5 });
    expect(parseTotals({ calls: 'x', bad: '0', base: '1', rated: '0.5', rated_t: '3', unrated: '0', unrated_t: '0' })).toBeUndefined();
  });

  it('unknown stays unknown with totals: bad records, no rate, an edge in doubt', () => {
    const account = { enabled: '1', balance: '1', rate: '1' };
    const t = { calls: 1, bad: 0, base: T0 - 60_000, rated: 0, ratedT: 0, unrated: 1, unratedT: 0 };
    expect(assessTotals({ accountId: 'a', account, totals: { ...t, bad: 1 } }, T0)).toMatchObject({ kind: 'unknown', cause: 'bad-call-record' });
    expect(assessTotals({ accountId: 'a', account: { enabled: '1', balance: '1' }, totals: t }, T0)).toMatchObject({ kind: 'unknown', cause: 'no-rate' });
    expect(assessTotals({ accountId: 'a', account, totals: t, inDoubt: true }, T0)).toMatchObject({ kind: 'unknown', cause: 'edge-in-doubt' });
    expect(assessTotals({ accountId: 'a', account, totals: null }, T0)).toMatchObject({ kind: 'unknown', cause: 'read-failed' });
    expect(assessTotals({ accountId: 'a', account, totals: t }, T0)).toMatchObject({ kind: 'exhausted', projected: 0, calls: 1 });
  });
});
