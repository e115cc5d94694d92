import { describe, expect, it } from 'vitest';
import { AbsenceGuard, type AbsenceGuardSettings } from '../../src/accounts/absence-guard.js';
import { orphanVerdict, sharedHolds } from '../../src/accounts/absence-hold.js';
import type { Account } from '../../src/accounts/account.js';
import type { CachedAccount } from '../../src/accounts/lookup.js';
import { silentLogger } from '../../src/log.js';

const SETTINGS: AbsenceGuardSettings = { windowMs: 60_000, minAccounts: 10, minShare: 0.05, confirmMs: 1000, maxStaleMs: 300_000 };
const account = (id: string): Account => ({ id, enabled: true, creditBlocked: false, route: 'default' });
const copy = (id: string, ageMs = 1000): CachedAccount => ({ account: account(id), replica: 'r1', ageMs });

function guard(settings: Partial<AbsenceGuardSettings> = {}) {
  let mark = 'd1#0';
  const g = new AbsenceGuard({ ...SETTINGS, ...settings }, { deletionsAcceptedMark: () => mark }, silentLogger);
  return { g, acceptDeletionsInRedis: () => (mark = `d1#${Number(mark.split('#')[1]) + 1}`) };
}

/** `n` account ids, as a probe names those it found absent. */
const ids = (n: number): string[] => Array.from({ length: n }, (_, i) => `other-${i}`);

/** `n` lookups of recently found accounts that found them, at `now`. */
function foundMany(g: AbsenceGuard, n: number, now: number): void {
  for (let i = 0; i < n; i++) g.found(`busy-${i}`, now);
}

describe('the mass-absence guard', () => {
  it('lets an absence stand at once for an account the edge never found (or found too long ago)', () => {
    const { g } = guard();
    expect(g.hold('never-seen', undefined, 10_000)).toBeUndefined();
    expect(g.hold('old-copy', copy('old-copy', 400_000), 10_000)).toBeUndefined();
  });

  it('holds a recently found account that reads absent for the confirmation time, then lets the absence stand', () => {
    const { g } = guard();
    expect(g.hold('gone', copy('gone'), 10_000)).toMatchObject({ outcome: 'unknown', cause: 'absence-unconfirmed' });
    expect(g.hold('gone', copy('gone'), 10_900)).toMatchObject({ cause: 'absence-unconfirmed' });
    expect(g.hold('gone', copy('gone'), 11_000)).toBeUndefined();
  });

  it('a real deletion of a few accounts never opens it', () => {
    const { g } = guard();
    foundMany(g, 100, 10_000);
    for (let i = 0; i < 9; i++) g.hold(`gone-${i}`, copy(`gone-${i}`), 10_000 + i);
    expect(g.state(10_100)).toMatchObject({ open: false, absences: 9 });
    for (let i = 0; i < 9; i++) expect(g.hold(`gone-${i}`, copy(`gone-${i}`), 11_100)).toBeUndefined();
  });

  it('opens when enough recently found accounts turn absent at once: every absence is then held, none becomes a 403', () => {
    const { g } = guard();
    foundMany(g, 100, 10_000);
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push(g.hold(`gone-${i}`, copy(`gone-${i}`), 10_000 + 20 * i));
    expect(answers.slice(0, 9).map((a) => a?.cause)).toEqual(Array(9).fill('absence-unconfirmed'));
    expect(answers.slice(9).map((a) => a?.cause)).toEqual(['mass-absence', 'mass-absence', 'mass-absence']);
    expect(g.state(10_300)).toMatchObject({ open: true });
    // Past the confirmation time, still held; and accounts never seen get unknown too (503, not 403).
    expect(g.hold('gone-0', copy('gone-0'), 12_000)).toMatchObject({ cause: 'mass-absence' });
    expect(g.hold('never-seen', undefined, 12_000)).toMatchObject({ cause: 'mass-absence' });
  });

  it('does not open on a busy edge where the absences are a small share of the lookups', () => {
    const { g } = guard();
    for (let i = 0; i < 12; i++) {
      foundMany(g, 50, 10_000 + 100 * i);
      g.hold(`gone-${i}`, copy(`gone-${i}`), 10_000 + 100 * i);
    }
    expect(g.state(11_200)).toMatchObject({ open: false, absences: 12 });
  });

  it('closes by itself once no cached account has read absent for the window (the data came back)', () => {
    const { g } = guard();
    for (let i = 0; i < 10; i++) g.hold(`gone-${i}`, copy(`gone-${i}`), 10_000);
    expect(g.state(10_000).open).toBe(true);
    for (let i = 0; i < 10; i++) g.found(`gone-${i}`, 20_000);
    expect(g.state(69_999).open).toBe(true);
    expect(g.state(70_000).open).toBe(false);
  });

  it('stays open while cached accounts keep reading absent (a lost dataset under traffic)', () => {
    const { g } = guard();
    for (let i = 0; i < 10; i++) g.hold(`gone-${i}`, copy(`gone-${i}`), 10_000);
    for (let t = 10_000; t <= 200_000; t += 30_000) expect(g.hold('gone-1', copy('gone-1', t - 9_000), t)).toMatchObject({ cause: 'mass-absence' });
  });

  it('releases when an operator accepts the deletions through the dataset marker: held absences stand at once', () => {
    const { g, acceptDeletionsInRedis } = guard();
    for (let i = 0; i < 10; i++) g.hold(`gone-${i}`, copy(`gone-${i}`), 10_000);
    expect(g.state(10_000).open).toBe(true);
    acceptDeletionsInRedis();
    expect(g.hold('gone-3', copy('gone-3'), 10_500)).toBeUndefined();
    expect(g.state(10_500)).toMatchObject({ open: false, absences: 0 });
    // Accepted absences do not count again, and a new one is confirmed as usual.
    expect(g.hold('gone-4', copy('gone-4'), 10_600)).toBeUndefined();
    expect(g.hold('new-gone', copy('new-gone'), 10_700)).toMatchObject({ cause: 'absence-unconfirmed' });
    // Opened again by a new crowd, it names only absences not accepted (its peers check those later).
    g.sampled(ids(5), 20, 10_800);
    expect(g.state(10_800)).toMatchObject({ open: true, accounts: ['new-gone', ...ids(5)] });
  });

  it('releases on the admin API word of an operator too', () => {
    const { g } = guard();
    for (let i = 0; i < 10; i++) g.hold(`gone-${i}`, copy(`gone-${i}`), 10_000);
    g.acceptDeletions(10_100, 'test');
    expect(g.hold('gone-0', copy('gone-0'), 10_200)).toBeUndefined();
  });

  it('a found account stops counting as absent', () => {
    const { g } = guard();
    g.hold('flaky', copy('flaky'), 10_000);
    g.found('flaky', 10_100);
    expect(g.state(10_100).absences).toBe(0);
    expect(g.hold('flaky', copy('flaky'), 20_000)).toMatchObject({ cause: 'absence-unconfirmed' });
  });

  it('a probe finding a crowd among other recently found accounts opens it at once; one finding a few does not', () => {
    const quiet = guard().g;
    expect(quiet.hold('gone', copy('gone'), 10_000)).toMatchObject({ cause: 'absence-unconfirmed' });
    quiet.sampled(ids(2), 50, 10_010);
    expect(quiet.state(10_020).open).toBe(false);
    // 2 of 50 is 4%, under min_share; 3 of 100 too (3%).
    quiet.sampled(ids(3), 100, 10_030);
    expect(quiet.state(10_040).open).toBe(false);
    // Still held past the confirmation time? No: a few absences are real deletions.
    expect(quiet.hold('gone', copy('gone'), 11_000)).toBeUndefined();

    const gutted = guard().g;
    gutted.hold('gone', copy('gone'), 10_000);
    gutted.sampled(ids(15), 50, 10_010);
    expect(gutted.state(10_020)).toMatchObject({ open: true, why: expect.stringContaining('15 of 50') });
    // It names the accounts it found absent, for its peers to check later (src/accounts/absence-hold.ts).
    expect(gutted.state(10_020).accounts).toEqual(['gone', ...ids(15)]);
    // The account that tripped the probe is held past its confirmation time: the cache answers.
    expect(gutted.hold('gone', copy('gone'), 11_500)).toMatchObject({ cause: 'mass-absence' });
  });
});

describe('the mass-absence guard across edges', () => {
  const PEER = { edge: 'edge-b:1a2b', openedAt: 9_000, why: '12 accounts found within max-stale turned absent' };

  it("holds every absence while a peer edge's guard is open, its own closed; and lets them stand once it closed", () => {
    const { g } = guard();
    g.setPeerHolds([PEER]);
    expect(g.hold('never-seen', undefined, 10_000)).toMatchObject({ cause: 'mass-absence', detail: expect.stringContaining('peer edge edge-b:1a2b') });
    expect(g.hold('gone', copy('gone'), 12_000)).toMatchObject({ cause: 'mass-absence' });
    expect(g.state(12_000)).toMatchObject({ open: false, heldBy: ['edge-b:1a2b'] });
    g.setPeerHolds([]);
    expect(g.hold('never-seen', undefined, 12_100)).toBeUndefined();
    expect(g.state(12_100).heldBy).toBeUndefined();
  });

  it('an edge that began reading the dataset a moment ago holds an absence it has no copy of for the confirmation time and a second', () => {
    const g = new AbsenceGuard(SETTINGS, { deletionsAcceptedMark: () => 'd1#0', readingSince: () => 10_000 }, silentLogger);
    expect(g.hold('never-seen', undefined, 10_100)).toMatchObject({ cause: 'absence-unconfirmed', detail: expect.stringContaining('began reading the dataset 100 ms ago') });
    expect(g.hold('never-seen', undefined, 11_999)).toMatchObject({ cause: 'absence-unconfirmed' });
    expect(g.hold('never-seen', undefined, 12_000)).toBeUndefined();
    // A copy, even an old one, is judged by the copy's rules, not by this one.
    expect(g.hold('old-copy', copy('old-copy', 400_000), 10_500)).toBeUndefined();
  });

  it("a peer's hold counts under this edge's dataset and deletions count only, never this process's own, and never a value that does not parse", () => {
    const counted = JSON.stringify({ mark: 'd1#0', openedAt: 2, why: 'crowd', accounts: ['gone-1', 'gone-2', 'not an id', 7], renewedAt: 5 });
    const raw = {
      'edge-a:own': JSON.stringify({ mark: 'd1#0', openedAt: 1, why: 'x' }),
      'edge-b:1': counted,
      'edge-c:1': JSON.stringify({ mark: 'd1#1', openedAt: 3, why: 'after an acceptance this edge has not seen yet' }),
      'edge-d:1': JSON.stringify({ mark: 'd0#0', openedAt: 4, why: 'another dataset' }),
      'edge-e:1': '{not json',
      'edge-f:1': JSON.stringify({ mark: 'd1#0' }),
    };
    // The accounts it names are read later, if its edge is gone: account ids only.
    expect(sharedHolds(raw, 'edge-a:own', 'd1#0')).toEqual([{ edge: 'edge-b:1', openedAt: 2, why: 'crowd', accounts: ['gone-1', 'gone-2'], value: counted }]);
    expect(sharedHolds(raw, 'edge-a:own', undefined)).toEqual([]);
  });

  it('the hold of an edge that is gone stands while at least half of the accounts it named still read absent', () => {
    expect(orphanVerdict(20, 20).stands).toBe(true);
    expect(orphanVerdict(10, 20)).toEqual({ stands: true, detail: '10 of the 20 accounts it named still read absent' });
    // Most came back: the data is back, and the few still absent are deletions like any other.
    expect(orphanVerdict(9, 20).stands).toBe(false);
    expect(orphanVerdict(0, 20).stands).toBe(false);
    // One that named none cannot be checked: it lapses, as every hold did before holds outlived their edge.
    expect(orphanVerdict(0, 0).stands).toBe(false);
  });
});
