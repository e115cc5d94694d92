import { describe, expect, it } from 'vitest';
import { countedSpan, mostAtOnce, overLimitEpisodes, wasRouted } from '../../bench/soak/calls-in-progress.js';
import type { SoakCall } from '../../bench/soak/history.js';
import { afterHealthyTime, meeting, mergeIntervals, subtractIntervals } from '../../bench/soak/intervals.js';

describe('intervals', () => {
  it('merges overlapping and touching intervals', () => {
    expect(mergeIntervals([{ from: 5, to: 8 }, { from: 0, to: 2 }, { from: 2, to: 3 }, { from: 7, to: Infinity }])).toEqual([{ from: 0, to: 3 }, { from: 5, to: Infinity }]);
    expect(meeting([{ from: 0, to: 3 }], 3, 10)).toEqual({ from: 0, to: 3 });
    expect(meeting([{ from: 0, to: 3 }], 3.1, 10)).toBeUndefined();
  });

  it('takes the covered parts out of a span', () => {
    expect(subtractIntervals({ from: 0, to: 100 }, [{ from: 20, to: 30 }, { from: 25, to: 40 }, { from: 90, to: 200 }])).toEqual([{ from: 0, to: 20 }, { from: 40, to: 90 }]);
    expect(subtractIntervals({ from: 0, to: 100 }, [{ from: -5, to: Infinity }])).toEqual([]);
    expect(subtractIntervals({ from: 0, to: 100 }, [])).toEqual([{ from: 0, to: 100 }]);
  });

  it('a deadline of healthy time stops while impaired, and never comes if the impairment never ends', () => {
    expect(afterHealthyTime([], 10, 5)).toBe(15);
    expect(afterHealthyTime([{ from: 12, to: 30 }], 10, 5)).toBe(33);
    expect(afterHealthyTime([{ from: 0, to: 11 }, { from: 12, to: 13 }], 10, 5)).toBe(17);
    expect(afterHealthyTime([{ from: 20, to: 30 }], 10, 5)).toBe(15);
    expect(afterHealthyTime([{ from: 12, to: Infinity }], 10, 5)).toBe(Infinity);
  });
});

describe('calls in progress as an edge may count them', () => {
  const base: SoakCall = { callId: 'c', stream: 'short', account: 'a', inviteMs: 100, answerMs: undefined, status: undefined, phrase: undefined, decision: undefined, edge: undefined, connectedMs: undefined, endedMs: undefined };

  it('routed: connected, answered by a carrier, or ringing with no final; not an edge rejection', () => {
    expect(wasRouted({ ...base, connectedMs: 120 })).toBe(true);
    expect(wasRouted({ ...base, status: 486, edge: 'edge-a' })).toBe(true);
    expect(wasRouted({ ...base, answerMs: 110 })).toBe(true);
    expect(wasRouted({ ...base, status: 403, edge: 'edge-a', decision: 'out-of-credit; basis=replica; replica=r1' })).toBe(false);
    expect(wasRouted({ ...base, status: 503 })).toBe(false);
  });

  it('counted from the INVITE to its end, the end of the run when not traced, or as long as its record outlived its edge', () => {
    expect(countedSpan({ ...base, endedMs: 500 }, 1000, 500)).toEqual({ from: 100, to: 500 });
    expect(countedSpan(base, 1000, 1000)).toEqual({ from: 100, to: 1000 });
    expect(countedSpan({ ...base, endedMs: 500 }, 1000, 800)).toEqual({ from: 100, to: 800 });
  });

  it('the most at once within a window, and the episodes over a limit', () => {
    const spans = [{ from: 0, to: 10 }, { from: 5, to: 20 }, { from: 10, to: 30 }];
    expect(mostAtOnce(spans, 0, 4)).toBe(1);
    expect(mostAtOnce(spans, 0, 100)).toBe(3);
    expect(mostAtOnce(spans, 11, 100)).toBe(2);
    expect(overLimitEpisodes(spans, 1)).toEqual([{ from: 5, to: 10, most: 2 }, { from: 10, to: 20, most: 2 }]);
    expect(overLimitEpisodes(spans, 0)).toEqual([{ from: 0, to: 30, most: 2 }]);
    // One call hanging up as the next is answered is not an overshoot.
    expect(overLimitEpisodes([{ from: 0, to: 10 }, { from: 10, to: 20 }], 1)).toEqual([]);
  });
});
