import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAccountState } from '../../src/accounts/account-state.js';
import { StaleCache } from '../../src/accounts/stale-cache.js';
import { startTopology, type RedisNode, type Topology } from '../../src/dev/topology.js';
import { decide } from '../../src/policy/decide.js';
import { DEFAULT_RULES } from '../../src/policy/rules.js';
import { readerOver, type ReaderUnderTest } from '../helpers/accounts.js';

/**
 * Each lookup outcome, produced by the real Redis condition on a real replica: found, absent,
 * and unknown from a frozen replica, LOADING, MASTERDOWN, a resync from empty, and a bad value.
 */

let topology: Topology;
const open: ReaderUnderTest[] = [];

async function reader(...args: Parameters<typeof readerOver>): Promise<ReaderUnderTest> {
  const r = await readerOver(...args);
  open.push(r);
  return r;
}

/** Waits until the reader's connection to the replica is up again after a restart. */
async function connected(r: ReaderUnderTest): Promise<void> {
  for (let i = 0; i < 200 && r.pool.replicas.some((replica) => replica.client.status !== 'ready'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The pool believes the replica is in sync (as it would between two probes); the read must not. */
function believeInSync(r: ReaderUnderTest): void {
  for (const replica of r.pool.replicas) replica.setHealth('in-sync', 'test: as if the last probe said so');
}

beforeAll(async () => {
  topology = await startTopology({ replicas: 2, sentinels: 0 });
  await topology.seed({
    'acct-ok': { enabled: true, balance: 100, rate: 0.01, max_channels: 10, route: 'default' },
    'acct-bad-balance': { enabled: true, balance: 'ten' },
  });
  // A value no operator tool would write, straight into the hash.
  await topology.master.client.hset('account:acct-bad', { enabled: 'yes' });
  // Tests below read one replica alone: make sure each has caught up (a replica still finishing
  // its first sync acknowledges late, and the master's WAIT counts only replicas online).
  for (const replica of topology.replicas) {
    for (let i = 0; i < 200 && (await replica.client.exists('account:acct-ok', 'account:acct-bad', 'account:acct-bad-balance')) < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
});

afterAll(async () => {
  await Promise.all(open.map((r) => r.close()));
  await topology?.stop();
});

describe('one replica, each outcome from its real cause', () => {
  it('found: the account as the replica holds it, naming the replica', async () => {
    const { reader: r } = await reader([topology.replicas[0]!]);
    const lookup = await r.lookup('acct-ok');
    expect(lookup).toMatchObject({ outcome: 'found', replica: topology.replicas[0]!.name, account: { id: 'acct-ok', enabled: true, balance: 100, maxChannels: 10 } });
  });

  it('absent: nil from a replica in sync', async () => {
    const { reader: r } = await reader([topology.replicas[0]!]);
    expect(await r.lookup('acct-missing')).toEqual({ outcome: 'absent', replica: topology.replicas[0]!.name });
  });

  it('unknown (bad-value): a value that does not parse, naming the field', async () => {
    const { reader: r } = await reader([topology.replicas[0]!]);
    expect(await r.lookup('acct-bad')).toMatchObject({ outcome: 'unknown', cause: 'bad-value', detail: expect.stringContaining('enabled') });
    expect(await r.lookup('acct-bad-balance')).toMatchObject({ outcome: 'unknown', cause: 'bad-value', detail: expect.stringContaining('balance') });
  });

  it('unknown (timeout): a frozen replica, then suspect, in sync again once a probe finds it', async () => {
    const replica = topology.replicas[0]!;
    const r = await reader([replica], { replicaTimeoutMs: 100 });
    replica.freeze();
    try {
      expect(await r.reader.lookup('acct-ok')).toMatchObject({ outcome: 'unknown', cause: 'timeout' });
      expect(r.pool.replicas[0]!.health).toBe('suspect');
      // Still tried (slow is not wrong), still unknown.
      expect(await r.reader.lookup('acct-ok')).toMatchObject({ outcome: 'unknown', cause: 'timeout' });
    } finally {
      replica.thaw();
    }
    await r.pool.replicas[0]!.probe();
    expect(await r.reader.lookup('acct-ok')).toMatchObject({ outcome: 'found' });
  });

  it('unknown (masterdown): a replica cut from its master with replica-serve-stale-data no', async () => {
    const replica = topology.replicas[1]!;
    const r = await reader([replica]);
    await replica.setServeStaleData(false);
    await replica.cutLink();
    try {
      expect(await r.reader.lookup('acct-ok')).toMatchObject({ outcome: 'unknown', cause: 'masterdown' });
    } finally {
      await replica.restoreLink();
      await replica.setServeStaleData(true);
    }
  });

  it('unknown (not-in-sync): a replica cut from its master that still serves stale data', async () => {
    const replica = topology.replicas[1]!;
    const r = await reader([replica]);
    await replica.cutLink();
    try {
      expect(await r.reader.lookup('acct-ok')).toMatchObject({ outcome: 'unknown', cause: 'not-in-sync', detail: expect.stringContaining('link to master down') });
      expect(await r.reader.lookup('acct-missing')).toMatchObject({ outcome: 'unknown' });
    } finally {
      await replica.restoreLink();
    }
  });

  it('unknown (not-in-sync): the incident trap, nil from a replica resyncing from empty', async () => {
    const replica = topology.replicas[1]!;
    const r = await reader([replica]);
    await replica.restartFromEmpty({ holdSyncMs: 3000 });
    // The trap is real: the replica answers nil for a key the master has.
    expect(await replica.client.hgetall('account:acct-ok')).toEqual({});
    expect(await topology.master.client.hget('account:acct-ok', 'enabled')).toBe('1');
    await connected(r);
    expect(await r.reader.lookup('acct-ok')).toMatchObject({ outcome: 'unknown' });
    believeInSync(r);
    expect(await r.reader.lookup('acct-ok')).toMatchObject({ outcome: 'unknown', cause: 'not-in-sync', detail: expect.stringMatching(/sync in progress|link to master down/) });
    await replica.waitForSync();
    await r.pool.waitInSync(1);
    expect(await r.reader.lookup('acct-ok')).toMatchObject({ outcome: 'found' });
  });

  it('unknown (loading): a replica loading its dataset answers -LOADING', async () => {
    const replica = topology.replicas[1]!;
    // While loading, Redis answers clients only between keys: give it time to say LOADING.
    const r = await reader([replica], { replicaTimeoutMs: 1000 });
    await replica.makeLoading(4000);
    try {
      await connected(r);
      believeInSync(r);
      expect(await r.reader.lookup('acct-ok')).toMatchObject({ outcome: 'unknown', cause: 'loading' });
      expect(r.pool.replicas[0]!.health).toBe('not-in-sync');
    } finally {
      await replica.stopLoading();
    }
  });
});

describe('two replicas: one in trouble, the other answers', () => {
  it('a frozen replica: every lookup still finds the account, hedged to the other', async () => {
    const r = await reader(topology.replicas, { replicaTimeoutMs: 100 });
    topology.replicas[0]!.freeze();
    try {
      for (let i = 0; i < 40; i++) expect((await r.reader.lookup('acct-ok')).outcome).toBe('found');
    } finally {
      topology.replicas[0]!.thaw();
    }
  });

  it('a replica resyncing from empty: every lookup still finds the account', async () => {
    const r = await reader(topology.replicas);
    await topology.replicas[0]!.restartFromEmpty({ holdSyncMs: 2000 });
    const outcomes = new Set<string>();
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      const lookup = await r.reader.lookup('acct-ok');
      outcomes.add(lookup.outcome === 'found' ? `found from ${lookup.replica}` : lookup.outcome);
    }
    expect([...outcomes]).toEqual([`found from ${topology.replicas[1]!.name}`]);
    await topology.replicas[0]!.waitForSync();
  });
});

describe('a replica that says it is connected but lags behind its master', () => {
  it('its nil is not enough: the other replica in sync is asked, and finds the account', async () => {
    const [lagging, other] = topology.replicas as [RedisNode, RedisNode];
    const r = await reader([lagging, other]);
    // The replica keeps answering reads but applies nothing from its master for 2 s.
    await lagging.client.call('CLIENT', ['PAUSE', '2000', 'WRITE']);
    await topology.master.client.hset('account:acct-new', { enabled: '1', balance: '5' });
    for (let i = 0; i < 50 && (await other.client.exists('account:acct-new')) === 0; i++) await new Promise((res) => setTimeout(res, 10));
    // The trap: link connected, key missing.
    const raw = (await lagging.client.multi().role().hgetall('account:acct-new').exec())!;
    expect((raw[0]![1] as unknown[])[3]).toBe('connected');
    expect(raw[1]![1]).toEqual({});
    // Round robin puts the lagging replica first on one of these two lookups: both find it.
    for (let i = 0; i < 2; i++) expect(await r.reader.lookup('acct-new')).toMatchObject({ outcome: 'found', replica: other.name });
    await lagging.client.call('CLIENT', ['UNPAUSE']);
  });
});

describe('both replicas down: the stale cache', () => {
  it('answers from a cached copy until max-stale, then unknown gives 503, never 403', async () => {
    const rules = { ...DEFAULT_RULES, maxStaleMs: 1200, routes: { default: ['sip:127.0.0.1:5090'] } };
    const r = await reader(topology.replicas, { replicaTimeoutMs: 100 });
    const sources = r.sources(new StaleCache({ maxEntries: 100 }));
    const idle = { known: true as const, count: 0 };
    expect((await readAccountState(sources, 'acct-ok')).lookup.outcome).toBe('found');

    for (const replica of topology.replicas) replica.freeze();
    try {
      const early = await readAccountState(sources, 'acct-ok');
      expect(early.lookup.outcome).toBe('unknown');
      const fromCache = decide({ ...early, callsInProgress: idle }, rules);
      expect(fromCache).toMatchObject({ action: 'route', basis: { source: 'cache' } });

      await new Promise((resolve) => setTimeout(resolve, 1300));
      const late = await readAccountState(sources, 'acct-ok');
      expect(decide({ ...late, callsInProgress: idle }, rules)).toMatchObject({ action: 'reject', status: 503, retryAfter: 5 });
      const neverSeen = await readAccountState(sources, 'acct-never-cached');
      expect(decide({ ...neverSeen, callsInProgress: idle }, rules)).toMatchObject({ action: 'reject', status: 503 });
    } finally {
      for (const replica of topology.replicas) replica.thaw();
    }
  });
});
