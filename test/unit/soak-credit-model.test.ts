import { describe, expect, it } from 'vitest';
import { balanceLow, exhaustedIntervals, fundedIntervals, lowBound, type CreditCall } from '../../bench/soak/credit-model.js';
import type { OperatorAction, RecordedAccount } from '../../bench/soak/history.js';
import { RecordedStates } from '../../bench/soak/recorded-state.js';

/**
 * The controller's rule from the outside: projected = set balance - cost of the calls that ended
 * since the set or still run. Times in seconds; rate 60/min = 1 unit per second.
 */

const s = (sec: number) => sec * 1000;
const LOW: RecordedAccount = { enabled: true, balance: 1, ratePerMin: 60, operatorBlocked: false, maxChannels: undefined };
const call = (connected: number, ended: number, keptUntil = ended): CreditCall => ({ callId: `c${connected}`, connectedMs: s(connected), endedMs: s(ended), keptUntilMs: s(keptUntil) });
const versions = (initial: RecordedAccount | null, actions: OperatorAction[] = []) => new RecordedStates([{ id: 'a', kind: 'low-credit', initial }], actions, [], s(1)).versions('a');
const topUp = (at: number, done: number, balance: number, ok = true): OperatorAction => ({ kind: 'top-up', account: 'a', atMs: s(at), doneMs: s(done), after: { ...LOW, balance }, ok });

describe('the credit model', () => {
  it('runs dry one unit of cost after the answer, and stays dry once the call ended (its cost moved into the balance)', () => {
    expect(exhaustedIntervals(versions(LOW), [call(10, 15)], 0, s(100))).toEqual([{ from: s(11), to: s(100) }]);
  });

  it('two calls at once run it dry twice as fast (exact: no grid)', () => {
    expect(exhaustedIntervals(versions(LOW), [call(10, 50), call(10, 50)], 0, s(100))).toEqual([{ from: s(10.5), to: s(100) }]);
  });

  it('a top-up ends the dry interval as soon as it may have landed; the calls that ended before it are not charged to it', () => {
    expect(exhaustedIntervals(versions(LOW, [topUp(20, 21, 5)]), [call(10, 15), call(30, 100)], 0, s(100))).toEqual([
      { from: s(11), to: s(20) },
      { from: s(35), to: s(100) },
    ]);
  });

  it('a failed top-up may have landed: never certainly dry after its start', () => {
    expect(exhaustedIntervals(versions(LOW, [topUp(20, 21, 5, false)]), [call(10, 15), call(30, 100)], 0, s(100))).toEqual([{ from: s(11), to: s(20) }]);
  });

  it('a dataset lost and re-provisioned from the record sets the balances afresh: never dry inside it, the debits before it gone', () => {
    expect(exhaustedIntervals(versions(LOW), [call(10, 15)], 0, s(100), [{ from: s(20), to: s(25) }])).toEqual([{ from: s(11), to: s(20) }]);
    expect(exhaustedIntervals(versions(LOW), [call(10, 15), call(30, 100)], 0, s(100), [{ from: s(20), to: s(25) }])).toEqual([
      { from: s(11), to: s(20) },
      { from: s(31), to: s(100) },
    ]);
  });

  it('an account with no balance, deleted, or with calls it cannot price never runs dry', () => {
    expect(exhaustedIntervals(versions({ ...LOW, balance: undefined }), [call(10, 50)], 0, s(100))).toEqual([]);
    expect(exhaustedIntervals(versions(null), [call(10, 50)], 0, s(100))).toEqual([]);
    expect(exhaustedIntervals(versions({ ...LOW, ratePerMin: undefined }), [call(10, 50)], 0, s(100))).toEqual([]);
    expect(exhaustedIntervals(versions({ ...LOW, ratePerMin: undefined, balance: 0 }), [], 0, s(100))).toEqual([{ from: 0, to: s(100) }]);
  });

  it('the low bound takes the least balance among the states possible in the lookback, and the highest rate', () => {
    const v = versions(LOW, [topUp(20, 21, 50)]);
    expect(lowBound(v, [call(10, 30)], s(21.5), s(2), s(1))).toEqual({ projected: 1 - 11.5, ratePerMin: 60 });
    // After the top-up propagated (+22 s) and the lookback passed: 50 minus the running call's 20 s.
    expect(lowBound(v, [call(10, 30)], s(30), s(2), s(1)).projected).toBeCloseTo(30, 6);
    expect(lowBound(versions({ ...LOW, balance: undefined }), [], s(5), s(2), s(1)).projected).toBeUndefined();
  });

  it("the low bound charges a call whose edge died under it until its record may have gone", () => {
    expect(lowBound(versions({ ...LOW, balance: 100 }), [call(10, 15, 40)], s(30), s(2), s(1)).projected).toBeCloseTo(80, 6);
  });

  it('certainly funded: the lowest projection above the timing allowance, from when the old state is out of the lookback', () => {
    // 1 unit, one call from +10 s: funded until the projection meets the allowance (60/min x 1 call x 2 s = 2 units): never after +10 s.
    expect(fundedIntervals(versions(LOW), [call(10, 50)], 0, s(100), s(2), s(1))).toEqual([{ from: 0, to: s(10) }]);
    // Topped up to 40 over +20 .. +21 s: the old state leaves the lookback at +24 s; then 40 - (x - 10) > 2 until +48 s.
    expect(fundedIntervals(versions(LOW, [topUp(20, 21, 40)]), [call(10, 100)], s(15), s(100), s(2), s(1))).toEqual([{ from: s(24), to: s(48) }]);
  });

  it('a block or unblock leaves the balance field as it was: the calls ended before it stay charged', () => {
    const block = (at: number, blocked: boolean): OperatorAction => ({ kind: blocked ? 'block' : 'unblock', account: 'a', atMs: s(at), doneMs: s(at + 0.5), after: { ...LOW, balance: 10, operatorBlocked: blocked }, ok: true });
    const v = versions({ ...LOW, balance: 10 }, [block(20, true), block(30, false)]);
    expect(lowBound(v, [call(10, 15)], s(40), s(2), s(1)).projected).toBeCloseTo(5, 6);
    // A top-up sets it afresh.
    expect(lowBound(versions({ ...LOW, balance: 10 }, [topUp(20, 20.5, 10)]), [call(10, 15)], s(40), s(2), s(1)).projected).toBeCloseTo(10, 6);
  });

  it('the least balance field by an instant: the set balance minus the calls ended by then', () => {
    const [v] = versions({ ...LOW, balance: 10 });
    expect(balanceLow(v!, [call(10, 13), call(20, 40)], s(30), s(1))).toBeCloseTo(7, 6);
  });
});
