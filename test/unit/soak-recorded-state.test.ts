import { describe, expect, it } from 'vitest';
import type { OperatorAction, RecordedAccount } from '../../bench/soak/history.js';
import { RecordedStates } from '../../bench/soak/recorded-state.js';

/** An account's possible recorded states over time (propagation 1000 ms throughout). */

const A: RecordedAccount = { enabled: true, balance: 10, ratePerMin: 1, operatorBlocked: false, maxChannels: undefined };
const BLOCKED: RecordedAccount = { ...A, operatorBlocked: true };
const P = 1000;
const act = (atMs: number, doneMs: number, after: RecordedAccount | null, ok = true): OperatorAction => ({ kind: 'block', account: 'a', atMs, doneMs, after, ok });
const statesOver = (s: RecordedStates, from: number, to: number) => s.possibleOver('a', from, to).map((v) => v.state);

describe('recorded states', () => {
  it('with no action, the definition holds throughout; an account nobody defined never existed', () => {
    const s = new RecordedStates([{ id: 'a', kind: 'funded', initial: A }], [], [], P);
    expect(statesOver(s, 0, 1e12)).toEqual([A]);
    expect(s.possibleOver('nobody', 0, 1).map((v) => v.state)).toEqual([null]);
  });

  it('a successful action makes both states possible from its start until its end plus the propagation time', () => {
    const s = new RecordedStates([{ id: 'a', kind: 'funded', initial: A }], [act(100, 150, BLOCKED)], [], P);
    expect(statesOver(s, 99, 99)).toEqual([A]);
    expect(statesOver(s, 100, 100)).toEqual([A, BLOCKED]);
    expect(statesOver(s, 1149, 1149)).toEqual([A, BLOCKED]);
    expect(statesOver(s, 1150, 1150)).toEqual([BLOCKED]);
    expect(statesOver(s, 0, 2000)).toEqual([A, BLOCKED]);
  });

  it("a failed action's state is possible from its start to the end, and marked uncertain", () => {
    const s = new RecordedStates([{ id: 'a', kind: 'funded', initial: A }], [act(100, 150, BLOCKED, false)], [], P);
    expect(statesOver(s, 1e9, 1e9)).toEqual([A, BLOCKED]);
    expect(s.possibleOver('a', 1e9, 1e9).map((v) => v.uncertain)).toEqual([false, true]);
  });

  it('two overlapping commands may land in either order: both states stay possible', () => {
    const other = { ...A, balance: 99 };
    const s = new RecordedStates([{ id: 'a', kind: 'funded', initial: A }], [act(100, 500, BLOCKED), act(200, 300, other)], [], P);
    expect(statesOver(s, 1e9, 1e9)).toEqual([BLOCKED, other]);
    // In sequence, the later one wins.
    const t = new RecordedStates([{ id: 'a', kind: 'funded', initial: A }], [act(100, 150, BLOCKED), act(200, 300, other)], [], P);
    expect(statesOver(t, 1e9, 1e9)).toEqual([other]);
  });

  it('only a top-up or a create sets the balance: a block keeps the time of the set before it', () => {
    const topUp: OperatorAction = { kind: 'top-up', account: 'a', atMs: 100, doneMs: 150, after: { ...A, balance: 20 }, ok: true };
    const block: OperatorAction = { kind: 'block', account: 'a', atMs: 300, doneMs: 350, after: { ...BLOCKED, balance: 20 }, ok: true };
    const s = new RecordedStates([{ id: 'a', kind: 'funded', initial: A }], [topUp, block], [], P);
    expect(s.versions('a').map((v) => v.balanceSet)).toEqual([{ from: -Infinity, to: -Infinity }, { from: 100, to: 150 }, { from: 100, to: 150 }]);
  });

  it('a block in the audit stream lasts until the next unblock of the account, by anyone, with the propagation time on both sides', () => {
    const s = new RecordedStates([], [], [
      { atMs: 5000, action: 'block', account: 'a', by: 'controller' },
      { atMs: 9000, action: 'unblock', account: 'a', by: 'operator' },
      { atMs: 20000, action: 'block', account: 'a', by: 'operator' },
    ], P);
    expect(s.blockPeriods('a')).toEqual([
      { by: 'controller', atMs: 5000, liftedMs: 9000 },
      { by: 'operator', atMs: 20000, liftedMs: Infinity },
    ]);
    expect(s.blocksOver('a', 3000, 3999)).toEqual([]);
    expect(s.blocksOver('a', 3000, 4000)).toHaveLength(1);
    expect(s.blocksOver('a', 10000, 10000)).toHaveLength(1);
    expect(s.blocksOver('a', 10001, 18999)).toEqual([]);
  });
});
