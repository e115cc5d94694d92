import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { readAccountState } from '../../src/accounts/account-state.js';
import type { Found, Lookup } from '../../src/accounts/lookup.js';
import { startTopology, type RedisNode, type Topology } from '../../src/dev/topology.js';
import { LocalCopyWarmer } from '../../src/accounts/local-copy-warmer.js';
import { StaleCache } from '../../src/accounts/stale-cache.js';
import { silentLogger } from '../../src/log.js';
import { readerOver, type ReaderUnderTest } from '../helpers/accounts.js';
import type { Replica } from '../../src/accounts/replica.js';
import { accountKey, callsKey, DATASET_KEY } from '../../src/redis/keys.js';

/**
 * The coherent local copy with real Redis (CLIENT TRACKING on a replica): a copy answers with no
 * round trip while nothing changed, and each condition under which it must not decide (a change on
 * the master, a dropped connection, a replica resyncing, an invalidation racing a read, a flush, its
 * age) leads to a fresh read. "A round trip" is counted on the replica itself (INFO commandstats).
 */

let topology: Topology;
let replica: RedisNode;
let r: ReaderUnderTest;

/** EXEC calls the replica has served: one per lookup that went to it. */
async function readsServed(): Promise<number> {
  const stats = await replica.info('commandstats');
  return Number(/calls=(\d+)/.exec(stats.cmdstat_exec ?? '')?.[1] ?? 0);
}

async function trackingActive(): Promise<void> {
  await vi.waitFor(() => expect(r.pool.replicas.every((x) => x.tracking?.active)).toBe(true), { timeout: 5000 });
}

/** A lookup, and whether it cost a round trip to the replica. */
async function lookup(id: string): Promise<{ found: Found; roundTrip: boolean }> {
  const before = await readsServed();
  const result = await r.reader.lookup(id);
  expect(result.outcome, JSON.stringify(result)).toBe('found');
  return { found: result as Found, roundTrip: (await readsServed()) > before };
}

beforeAll(async () => {
  topology = await startTopology({ replicas: 1, sentinels: 0 });
  replica = topology.replicas[0]!;
});

afterAll(async () => {
  await topology?.stop();
});

beforeEach(async () => {
  await topology.seed({ 'acct-ok': { enabled: true, balance: 50 }, 'acct-limited': { enabled: true, balance: 50, max_channels: 5 } });
  // seed() waits only for replicas the master already counts online: the first time, make sure ours caught up.
  await vi.waitFor(async () => expect(await replica.client.exists(DATASET_KEY)).toBe(1), { timeout: 5000 });
  r = await readerOver([replica], { localCopy: {}, probeIntervalMs: 100 });
  await trackingActive();
});

afterEach(async () => {
  await r?.close();
});

const settle = () => new Promise((resolve) => setTimeout(resolve, 100));

/** A lookup that must read absent, and whether it cost a round trip to the replica. */
async function lookupAbsent(id: string): Promise<{ lookup: Lookup; roundTrip: boolean }> {
  const before = await readsServed();
  const result = await r.reader.lookup(id);
  expect(result.outcome, JSON.stringify(result)).toBe('absent');
  return { lookup: result, roundTrip: (await readsServed()) > before };
}

describe('the local copy', () => {
  it('answers the second lookup of an account with no round trip', async () => {
    expect((await lookup('acct-ok')).roundTrip).toBe(true);
    const second = await lookup('acct-ok');
    expect(second.roundTrip).toBe(false);
    expect(second.found.account.balance).toBe(50);
    expect(second.found.fromLocalCopy).toBe(true);
    expect(r.localCopy!.hits).toBe(1);
  });

  it('a change on the master reaches the next lookup: the copy is dropped and read afresh', async () => {
    await lookup('acct-ok');
    await topology.master.client.hset(accountKey('acct-ok'), 'credit_blocked', '1');
    await topology.master.waitForReplicas(1000);
    await vi.waitFor(() => expect(r.localCopy!.size).toBe(0), { timeout: 2000 });
    const next = await lookup('acct-ok');
    expect(next.roundTrip).toBe(true);
    expect(next.found.account.creditBlocked).toBe(true);
  });

  it('a dropped connection (data or invalidations) drops every copy from that replica', async () => {
    await lookup('acct-ok');
    await replica.client.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await settle();
    expect((await lookup('acct-ok')).roundTrip).toBe(true);

    await trackingActive();
    await lookup('acct-ok');
    expect((await lookup('acct-ok')).roundTrip).toBe(false);
    await replica.client.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
    await settle();
    await vi.waitFor(() => expect(r.pool.replicas[0]!.client.status).toBe('ready'), { timeout: 3000 });
    expect((await lookup('acct-ok').catch(() => ({ roundTrip: true }))).roundTrip).toBe(true);
  });

  it('a replica that stops being in sync (resync from empty) drops its copies', async () => {
    await lookup('acct-ok');
    await replica.restartFromEmpty({ holdSyncMs: 1000 });
    // The copy must not answer: the lookup is unknown (syncing), not found from memory.
    expect((await r.reader.lookup('acct-ok')).outcome).toBe('unknown');
    expect(r.localCopy!.hits).toBe(0);
    await replica.waitForSync();
    await r.pool.waitInSync(1);
  });

  it('an invalidation racing a read: the answer is used but not kept, and the next lookup reads afresh', async () => {
    const tracking = r.pool.replicas[0]!.tracking!;
    await lookup('acct-ok');
    await topology.master.client.hset(accountKey('acct-ok'), 'balance', '40');
    await topology.master.waitForReplicas(1000);
    await vi.waitFor(() => expect(r.localCopy!.size).toBe(0), { timeout: 2000 });
    // A read is in flight (its ticket taken when it was sent) when the key changes again.
    const ticket = tracking.beginRead('acct-ok');
    expect((await lookup('acct-ok')).found.account.balance).toBe(40);
    await topology.master.client.hset(accountKey('acct-ok'), 'balance', '30');
    await topology.master.waitForReplicas(1000);
    await vi.waitFor(() => expect(tracking.keep('acct-ok', ticket)).toBe(false), { timeout: 2000 });
    const next = await lookup('acct-ok');
    expect(next.roundTrip).toBe(true);
    expect(next.found.account.balance).toBe(30);
  });

  it('a flush on the master (or the dataset marker changing) drops every copy', async () => {
    await lookup('acct-ok');
    await lookup('acct-limited');
    await topology.master.client.hset(DATASET_KEY, 'accepted_at', String(Date.now()));
    await topology.master.waitForReplicas(1000);
    await settle();
    expect((await lookup('acct-ok')).roundTrip).toBe(true);
    expect((await lookup('acct-limited')).roundTrip).toBe(true);
  });

  it('calls in progress changing drop the copy of an account with a channel limit only', async () => {
    await lookup('acct-ok');
    await lookup('acct-limited');
    await topology.master.client.hset(callsKey('acct-ok'), 'call-1', '{}');
    await topology.master.client.hset(callsKey('acct-limited'), 'call-2', '{}');
    await topology.master.waitForReplicas(1000);
    await settle();
    expect((await lookup('acct-ok')).roundTrip).toBe(false);
    const limited = await lookup('acct-limited');
    expect(limited.roundTrip).toBe(true);
    expect(limited.found.callsInProgress).toBe(1);
    await topology.master.client.del(callsKey('acct-ok'), callsKey('acct-limited'));
  });

  it('warmed ahead of the calls: an account never looked up is decided from memory, and a change still reaches it', async () => {
    const cache = new StaleCache({ maxEntries: 1000 });
    const warmer = new LocalCopyWarmer(r.pool, r.localCopy!, cache, r.dataset, { maxEntries: 1000, checkEveryMs: 60_000, logger: silentLogger });
    // The dataset this reader reads is known from a first lookup, as on an edge carrying calls.
    await lookup('acct-ok');
    expect(await warmer.warm(r.pool.replicas[0]!)).toBe(2);
    // In the stale cache too, as if it had been called: a lost dataset finds it there.
    expect(cache.recall('acct-limited', Date.now())?.account.maxChannels).toBe(5);
    const first = await lookup('acct-limited');
    expect(first.roundTrip).toBe(false);
    expect(first.found.account.maxChannels).toBe(5);
    await topology.master.client.hset(accountKey('acct-limited'), 'enabled', '0');
    await topology.master.waitForReplicas(1000);
    await vi.waitFor(async () => expect((await lookup('acct-limited')).found.account.enabled).toBe(false), { timeout: 2000 });
  });

  it('an edge started before its accounts were provisioned warms them as soon as it sees their dataset', async () => {
    await topology.master.client.flushall();
    await topology.master.waitForReplicas(1000);
    const cache = new StaleCache({ maxEntries: 1000 });
    const warmer = new LocalCopyWarmer(r.pool, r.localCopy!, cache, r.dataset, { maxEntries: 1000, checkEveryMs: 50, logger: silentLogger });
    warmer.start();
    try {
      // Its warm-up found nothing; then the accounts and their dataset are provisioned.
      await vi.waitFor(async () => expect(await warmer.warm(r.pool.replicas[0]!)).toBe(0), { timeout: 3000 });
      await topology.seed({ 'acct-ok': { enabled: true, balance: 50 }, 'acct-limited': { enabled: true, balance: 50, max_channels: 5 } });
      await lookup('acct-ok');
      // Warmed at once, not at the next half max-age: in the cache before it was ever called.
      await vi.waitFor(() => expect(cache.recall('acct-limited', Date.now())).toBeDefined(), { timeout: 3000 });
    } finally {
      warmer.stop();
    }
  });

  it('a copy older than its bound is read afresh', async () => {
    await r.close();
    r = await readerOver([replica], { localCopy: { maxAgeMs: 200 }, probeIntervalMs: 100 });
    await trackingActive();
    await lookup('acct-ok');
    expect((await lookup('acct-ok')).roundTrip).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect((await lookup('acct-ok')).roundTrip).toBe(true);
  });

  it('keeps an absence too: the second lookup of a missing account has no round trip', async () => {
    expect((await lookupAbsent('acct-missing')).roundTrip).toBe(true);
    const second = await lookupAbsent('acct-missing');
    expect(second.roundTrip).toBe(false);
    expect(second.lookup).toMatchObject({ outcome: 'absent', fromLocalCopy: true });
    expect(r.localCopy!.hits).toBe(1);
  });

  it('an account created on the master after it read absent: the invalidation of a key that was missing drops the absence', async () => {
    await lookupAbsent('acct-new');
    expect((await lookupAbsent('acct-new')).roundTrip).toBe(false);
    await topology.master.client.hset(accountKey('acct-new'), 'enabled', '1', 'balance', '10');
    await topology.master.waitForReplicas(1000);
    await vi.waitFor(() => expect(r.localCopy!.size).toBe(0), { timeout: 2000 });
    const next = await lookup('acct-new');
    expect(next.roundTrip).toBe(true);
    expect(next.found.account.balance).toBe(10);
    await topology.master.client.del(accountKey('acct-new'));
  });

  it('an absence is dropped like a copy: a dropped connection, a flush, a resync', async () => {
    await lookupAbsent('acct-missing');
    await replica.client.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await settle();
    expect((await lookupAbsent('acct-missing')).roundTrip).toBe(true);

    await trackingActive();
    await lookupAbsent('acct-missing');
    expect((await lookupAbsent('acct-missing')).roundTrip).toBe(false);
    await topology.master.client.hset(DATASET_KEY, 'accepted_at', String(Date.now()));
    await topology.master.waitForReplicas(1000);
    await settle();
    expect((await lookupAbsent('acct-missing')).roundTrip).toBe(true);

    await lookupAbsent('acct-missing');
    await replica.restartFromEmpty({ holdSyncMs: 1000 });
    expect((await r.reader.lookup('acct-missing')).outcome).toBe('unknown');
    await replica.waitForSync();
    await r.pool.waitInSync(1);
  });

  it('an invalidation racing the read of a missing account: the absence is answered but not kept', async () => {
    const tracking = r.pool.replicas[0]!.tracking!;
    // A read is in flight (its ticket taken when it was sent) when the account is created.
    const ticket = tracking.beginRead('acct-racing');
    await topology.master.client.hset(accountKey('acct-racing'), 'enabled', '1', 'balance', '10');
    await topology.master.waitForReplicas(1000);
    await vi.waitFor(() => expect(tracking.keep('acct-racing', ticket)).toBe(false), { timeout: 2000 });
    await topology.master.client.del(accountKey('acct-racing'));
    await topology.master.waitForReplicas(1000);
    // The racing read: its nil is the answer, but its ticket is void, so nothing is kept.
    expect(r.localCopy!.keepAbsent('acct-racing', [{ replica: r.pool.replicas[0]!, ticket }], r.pool.replicas, Date.now())).toBe(false);
    expect(r.localCopy!.size).toBe(0);
  });

  it('an absence from the local copy still passes the mass-absence guard: a recently found account is held, not refused', async () => {
    const cache = new StaleCache({ maxEntries: 1000 });
    const sources = r.sources(cache);
    await topology.master.client.hset(accountKey('acct-gone'), 'enabled', '1', 'balance', '10');
    await topology.master.waitForReplicas(1000);
    expect((await readAccountState(sources, 'acct-gone')).lookup.outcome).toBe('found');
    await topology.master.client.del(accountKey('acct-gone'));
    await topology.master.waitForReplicas(1000);
    await vi.waitFor(() => expect(r.localCopy!.size).toBe(0), { timeout: 2000 });
    const first = await readAccountState(sources, 'acct-gone');
    expect(first.lookup).toMatchObject({ outcome: 'unknown', cause: 'absence-unconfirmed' });
    // Answered from memory this time, and held all the same.
    const hitsBefore = r.localCopy!.hits;
    const second = await readAccountState(sources, 'acct-gone');
    expect(r.localCopy!.hits).toBe(hitsBefore + 1);
    expect(second.lookup).toMatchObject({ outcome: 'unknown', cause: 'absence-unconfirmed' });
    expect(second.cached?.account.balance).toBe(10);
  });
});

describe('the local copy of an absence, over two replicas', () => {
  let two: ReaderUnderTest;
  let twoTopology: Topology;

  beforeAll(async () => {
    twoTopology = await startTopology({ replicas: 2, sentinels: 0 });
    await twoTopology.seed({ 'acct-ok': { enabled: true, balance: 50 } });
    for (const node of twoTopology.replicas) await vi.waitFor(async () => expect(await node.client.exists(DATASET_KEY)).toBe(1), { timeout: 5000 });
    two = await readerOver(twoTopology.replicas, { localCopy: {}, probeIntervalMs: 60_000 });
    await vi.waitFor(() => expect(two.pool.replicas.every((x) => x.tracking?.active)).toBe(true), { timeout: 5000 });
  });

  afterAll(async () => {
    await two?.close();
    await twoTopology?.stop();
  });

  it('is kept only when every replica that could be asked answered nil, and not used once another replica can be asked', async () => {
    const [a, b] = two.pool.replicas as [Replica, Replica];
    // Both asked, both nil: kept, and the next lookup is answered from memory.
    expect((await two.reader.lookup('acct-x')).outcome).toBe('absent');
    expect(await two.reader.lookup('acct-x')).toMatchObject({ outcome: 'absent', fromLocalCopy: true });

    // Only `a` could be asked (b out of sync): an absence read then is kept for `a` alone ...
    b.setHealth('not-in-sync', 'test: held out of sync');
    expect((await two.reader.lookup('acct-y')).outcome).toBe('absent');
    expect(await two.reader.lookup('acct-y')).toMatchObject({ outcome: 'absent', fromLocalCopy: true });
    // ... and once b can be asked again, the lookup goes to both replicas again.
    await b.probe();
    expect(b.inSync).toBe(true);
    const missesBefore = two.localCopy!.misses;
    const next = await two.reader.lookup('acct-y');
    expect(next.outcome).toBe('absent');
    expect(next).not.toHaveProperty('fromLocalCopy');
    expect(two.localCopy!.misses).toBe(missesBefore + 1);

    // A replica that answers other than nil (not in sync): the absence is answered but not kept.
    expect(a.inSync && b.inSync).toBe(true);
    const size = two.localCopy!.size;
    expect(two.localCopy!.keepAbsent('acct-z', [{ replica: a, ticket: a.tracking!.beginRead('acct-z') }], two.pool.replicas, Date.now())).toBe(false);
    expect(two.localCopy!.size).toBe(size);
  });
});
