import { describe, expect, it } from 'vitest';
import type { Account } from '../../src/accounts/account.js';
import { StaleCache } from '../../src/accounts/stale-cache.js';

const account = (id: string): Account => ({ id, enabled: true, creditBlocked: false, route: 'default' });

describe('the stale cache', () => {
  it('gives back the last found copy with its age and the replica it came from', () => {
    const cache = new StaleCache({ maxEntries: 10 });
    cache.remember({ outcome: 'found', account: account('a'), replica: 'r1', at: 1_000 });
    expect(cache.recall('a', 4_500)).toEqual({ account: account('a'), replica: 'r1', ageMs: 3_500 });
  });

  it('keeps only the newest copy of an account', () => {
    const cache = new StaleCache({ maxEntries: 10 });
    cache.remember({ outcome: 'found', account: account('a'), replica: 'r1', at: 1_000 });
    cache.remember({ outcome: 'found', account: { ...account('a'), enabled: false }, replica: 'r2', at: 2_000 });
    expect(cache.recall('a', 2_000)).toEqual({ account: { ...account('a'), enabled: false }, replica: 'r2', ageMs: 0 });
  });

  it('keeps the calls in progress read with a copy, and gives them back with it (same age)', () => {
    const cache = new StaleCache({ maxEntries: 10 });
    cache.remember({ outcome: 'found', account: account('a'), replica: 'r1', at: 1_000, callsInProgress: 2 });
    expect(cache.recall('a', 2_000)).toEqual({ account: account('a'), replica: 'r1', ageMs: 1_000, callsInProgress: 2 });
    cache.remember({ outcome: 'found', account: account('a'), replica: 'r1', at: 3_000, callsInProgress: 0 });
    expect(cache.recall('a', 3_000)?.callsInProgress).toBe(0);
  });

  it('takes the same copy again (as the local copy answers) as news of its age only, and a new count as news', () => {
    const cache = new StaleCache({ maxEntries: 10 });
    const a = account('a');
    cache.remember({ outcome: 'found', account: a, replica: 'r1', at: 1_000, callsInProgress: 1 });
    cache.remember({ outcome: 'found', account: a, replica: 'r1', at: 5_000, callsInProgress: 1 });
    expect(cache.recall('a', 6_000)).toEqual({ account: a, replica: 'r1', ageMs: 1_000, callsInProgress: 1 });
    cache.remember({ outcome: 'found', account: a, replica: 'r1', at: 6_000, callsInProgress: 3 });
    expect(cache.recall('a', 6_000)).toEqual({ account: a, replica: 'r1', ageMs: 0, callsInProgress: 3 });
  });

  it('forgets an account on an authoritative absent', () => {
    const cache = new StaleCache({ maxEntries: 10 });
    cache.remember({ outcome: 'found', account: account('a'), replica: 'r1', at: 1_000 });
    cache.forget('a');
    expect(cache.recall('a', 1_000)).toBeUndefined();
  });

  it('is bounded: past maxEntries the least recently used copy goes', () => {
    const cache = new StaleCache({ maxEntries: 2 });
    for (const id of ['a', 'b', 'c']) cache.remember({ outcome: 'found', account: account(id), replica: 'r1', at: 0 });
    expect(cache.size).toBe(2);
    expect(cache.recall('a', 0)).toBeUndefined();
    expect(cache.recall('c', 0)).toBeDefined();
  });
});
