import { describe, expect, it } from 'vitest';
import { RecentAdmissions } from '../../src/calls/call-rate.js';
import { ratePath } from '../../src/edge/rate-admission.js';

describe('where a call of an account with a calls-per-second limit is admitted', () => {
  it("from memory while this edge's own admissions in the last second, with it, stay within half its share (max_cps / edges)", () => {
    expect(ratePath(20, 4, 0, 2, 0.5)).toBe('memory');
    expect(ratePath(20, 5, 0, 2, 0.5)).toBe('master');
    expect(ratePath(30, 4, 0, 3, 0.5)).toBe('memory');
    expect(ratePath(30, 5, 0, 3, 0.5)).toBe('master');
  });

  it('on the master when the master said nothing of the account in the last second: the other edges may have filled it', () => {
    expect(ratePath(100, 0, undefined, 2, 0.5)).toBe('master');
  });

  it("and while the master's last count of the account's second, all edges, left half the limit free", () => {
    expect(ratePath(20, 0, 9, 2, 0.5)).toBe('memory');
    expect(ratePath(20, 0, 10, 2, 0.5)).toBe('master');
  });

  it('refused at once when this edge alone admitted max_cps in the last second: the count is its own, so the answer is sure', () => {
    expect(ratePath(10, 10, undefined, 2, 0.5)).toBe('full');
    expect(ratePath(0, 0, undefined, 2, 0.5)).toBe('full');
  });

  it('on the master while the edges present are not known for sure, or with no memory share', () => {
    expect(ratePath(100, 0, 0, undefined, 0.5)).toBe('master');
    expect(ratePath(100, 0, 0, 1, 0)).toBe('master');
  });
});

describe("an edge's own admissions in the last second", () => {
  it('slide: an admission counts for 1000 ms, then no more', () => {
    const recent = new RecentAdmissions();
    recent.add('a', 0);
    recent.add('a', 400);
    recent.add('b', 500);
    expect(recent.count('a', 999)).toBe(2);
    expect(recent.count('a', 1000)).toBe(1);
    expect(recent.count('a', 1400)).toBe(0);
    expect(recent.count('b', 1400)).toBe(1);
  });

  it('lose an admission taken back (the master refused the call)', () => {
    const recent = new RecentAdmissions();
    recent.add('a', 10);
    recent.add('a', 20);
    recent.withdraw('a', 20);
    recent.withdraw('a', 99);
    expect(recent.count('a', 500)).toBe(1);
  });

  it('forget the accounts with nothing left in the window when pruned', () => {
    const recent = new RecentAdmissions();
    recent.add('a', 0);
    recent.add('b', 900);
    recent.prune(1500);
    expect(recent.accounts).toBe(1);
    expect(recent.count('b', 1500)).toBe(1);
  });
});
