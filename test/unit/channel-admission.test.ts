import { describe, expect, it } from 'vitest';
import { channelPath } from '../../src/edge/channel-admission.js';

describe('which calls of a channel-limited account take their channel on the master', () => {
  const fresh = 1;
  const s = { memoryShare: 0.5, freshMs: 5 };

  it("those past half this edge's share of the limit (limit / the edges present), counting the call itself", () => {
    expect(channelPath(20, 4, 2, fresh, s)).toBe('memory');
    expect(channelPath(20, 5, 2, fresh, s)).toBe('master');
    expect(channelPath(10, 1, 2, fresh, s)).toBe('memory');
    expect(channelPath(10, 2, 2, fresh, s)).toBe('master');
    expect(channelPath(30, 4, 3, fresh, s)).toBe('memory');
    expect(channelPath(30, 5, 3, fresh, s)).toBe('master');
  });

  it('small limits always go to the master', () => {
    for (const limit of [1, 2, 3]) expect(channelPath(limit, 0, 2, fresh, s)).toBe('master');
    expect(channelPath(1, 0, 1, fresh, s)).toBe('master');
  });

  it('with the whole share, an edge alone admits from memory up to the limit: its own count is exact', () => {
    expect(channelPath(2, 1, 1, fresh, { ...s, memoryShare: 1 })).toBe('memory');
    expect(channelPath(10, 4, 2, fresh, { ...s, memoryShare: 1 })).toBe('memory');
    expect(channelPath(10, 5, 2, fresh, { ...s, memoryShare: 1 })).toBe('master');
  });

  it('with no share, every call', () => {
    expect(channelPath(1000, 0, 1, fresh, { ...s, memoryShare: 0 })).toBe('master');
  });

  it('all of them while the edges present are not known for sure', () => {
    expect(channelPath(100, 0, undefined, fresh, s)).toBe('master');
  });

  it('all of them decided from a count older than freshMs: a slow decision may not see what the other edges admitted meanwhile', () => {
    expect(channelPath(100, 0, 2, 5, s)).toBe('memory');
    expect(channelPath(100, 0, 2, 5.1, s)).toBe('master');
  });
});
