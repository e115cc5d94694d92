import { describe, expect, it } from 'vitest';
import { LocalCallsInProgress } from '../../src/edge/calls-in-progress.js';

describe("the edge's own count of calls in progress", () => {
  it('counts calls per account by Call-ID, and ends them by Call-ID alone', () => {
    const calls = new LocalCallsInProgress();
    calls.add('a', 'c1');
    calls.add('a', 'c2');
    calls.add('b', 'c3');
    expect([calls.count('a'), calls.count('b'), calls.total]).toEqual([2, 1, 3]);
    calls.end('c1');
    expect(calls.count('a')).toBe(1);
    expect([calls.has('c1'), calls.has('c2')]).toEqual([false, true]);
  });

  it('ignores an end twice or of an unknown call, so it never goes negative', () => {
    const calls = new LocalCallsInProgress();
    calls.add('a', 'c1');
    calls.end('c1');
    calls.end('c1');
    calls.end('never-seen');
    expect([calls.count('a'), calls.total]).toEqual([0, 0]);
  });

  it('counts a retransmitted add once', () => {
    const calls = new LocalCallsInProgress();
    calls.add('a', 'c1');
    calls.add('a', 'c1');
    expect(calls.count('a')).toBe(1);
  });
});
