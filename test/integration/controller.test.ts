import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAudit } from '../../src/control/audit.js';
import type { RunningController } from '../../src/control/start.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { callRecord, controllerOn, masterHash, sleep, until, writeCalls } from '../helpers/controller.js';
import { CALLS_INDEX_KEY, CONFIRM_BLOCKS_KEY, edgeAliveKey, LEASE_KEY } from '../../src/redis/keys.js';

/**
 * The credit controller against a real master, replicas and Sentinels (no SIP): its rules, the
 * tri-state reads, the breaker, dead edges, and the lease. Call records are written as an edge would.
 */

let topology: Topology;
let controller: RunningController;
const ROUND_MS = 200;

beforeAll(async () => {
  topology = await startTopology({ replicas: 2, sentinels: 3 });
  controller = controllerOn(topology, 'ctl-a', { breaker: { max_blocks: 3, min_accounts: 1000, window_ms: 60_000 } });
  await until('controller acting', 10_000, async () => controller.controller.isLeader);
});
afterAll(async () => {
  await controller?.stop();
  await topology?.stop();
});

const blocked = async (account: string) => (await masterHash(topology, account)).credit_blocked === '1';

describe('blocks and lifts blocks by itself', () => {
  it('a call that runs the balance out -> blocked within two rounds with reason and evidence; top-up -> unblocked', async () => {
    await topology.seed({ 'acct-run': { enabled: true, balance: 1, rate: 6 } });
    // 6 per minute = 0.1 per second: a call started 9.5 s ago has 0.05 left and crosses zero in 0.5 s.
    await writeCalls(topology, [callRecord('acct-run', 'run-1', 9.5 / 60)]);
    const crossesAt = Date.now() + 500;
    await until('acct-run blocked', 5000, () => blocked('acct-run'));
    expect(Date.now() - crossesAt).toBeLessThan(2 * ROUND_MS + 300);
    const hash = await masterHash(topology, 'acct-run');
    expect(hash).toMatchObject({ enabled: '1', credit_blocked: '1', credit_blocked_by: 'controller' });
    expect(hash.credit_block_reason).toMatch(/^projected balance -?[\d.]+ <= 0: balance 1, 1 call\(s\) in progress/);
    expect(JSON.parse(hash.credit_block_evidence!)).toMatchObject({ balance: 1, calls: 1, master: `${topology.master.host}:${topology.master.port}` });

    await topology.master.client.hset('account:acct-run', 'balance', '100');
    await until('acct-run unblocked', 2000, async () => !(await blocked('acct-run')));
    const audit = await readAudit(topology.master.client, { account: 'acct-run', limit: 10 });
    expect(audit.map((e) => e.action)).toEqual(['unblock', 'block']);
    expect(audit[1]!.controller).toBe('ctl-a');
  });

  it('calls ending makes the projection positive again -> unblocked', async () => {
    await topology.seed({ 'acct-end': { enabled: true, balance: 1, rate: 1 } });
    await writeCalls(topology, [callRecord('acct-end', 'end-1', 5)]);
    await until('acct-end blocked', 3000, () => blocked('acct-end'));
    await topology.master.client.hdel('calls:acct-end', 'end-1');
    await until('acct-end unblocked', 3000, async () => !(await blocked('acct-end')));
  });

  it("an operator's block is never lifted, and `enabled` is never touched", async () => {
    await topology.seed({ 'acct-op': { enabled: false, balance: 50, rate: 1, credit_blocked: true, credit_block_reason: 'fraud hold' } });
    await writeCalls(topology, [callRecord('acct-op', 'op-1', 1)]);
    await sleep(4 * ROUND_MS);
    expect(await masterHash(topology, 'acct-op')).toMatchObject({ enabled: '0', credit_blocked: '1', credit_block_reason: 'fraud hold' });
  });
});

describe('unknown is never a reason to block', () => {
  it('missing account hash, garbage balance, garbage rate, no rate, garbage call record: no block, counted', async () => {
    await topology.seed({
      'acct-garbage': { enabled: true, balance: 'ten', rate: 1 },
      'acct-badrate': { enabled: true, balance: 0.01, rate: 'fast' },
      'acct-norate': { enabled: true, balance: 0.01 },
      'acct-badcall': { enabled: true, balance: 0.01, rate: 1 },
    });
    await writeCalls(topology, [
      callRecord('acct-nohash', 'x-1', 60, { rate: 1 }),
      callRecord('acct-garbage', 'x-2', 60),
      callRecord('acct-badrate', 'x-3', 60),
      callRecord('acct-norate', 'x-4', 60),
    ]);
    await topology.master.client.hset('calls:acct-badcall', 'x-5', '{"callId": garbage');
    await topology.master.client.sadd(CALLS_INDEX_KEY, 'acct-badcall');
    await sleep(5 * ROUND_MS);
    for (const id of ['acct-nohash', 'acct-garbage', 'acct-badrate', 'acct-norate', 'acct-badcall']) {
      expect((await masterHash(topology, id)).credit_blocked ?? '0', id).toBe('0');
    }
    const unknown = await controller.metrics.unknownAccounts.get();
    const causes = new Set(unknown.values.map((v) => v.labels.cause));
    expect([...causes].sort()).toEqual(expect.arrayContaining(['bad-account', 'bad-call-record', 'missing-account', 'no-rate']));
    // Out of the way for the tests below.
    await topology.master.client.del('calls:acct-nohash', 'calls:acct-garbage', 'calls:acct-badrate', 'calls:acct-norate', 'calls:acct-badcall');
    await topology.master.client.srem(CALLS_INDEX_KEY, 'acct-nohash', 'acct-garbage', 'acct-badrate', 'acct-norate', 'acct-badcall');
  });
});

describe('breaker', () => {
  it('many accounts crossing zero at once -> none blocked, breaker metric set; an operator confirms -> blocked', async () => {
    const ids = ['m1', 'm2', 'm3', 'm4', 'm5'].map((s) => `acct-mass-${s}`);
    await topology.seed(Object.fromEntries(ids.map((id) => [id, { enabled: true, balance: 1, rate: 1 }])));
    await writeCalls(topology, ids.map((id) => callRecord(id, `${id}-call`, 5)));
    await until('breaker open', 3000, async () => (await controller.metrics.breakerOpen.get()).values[0]?.value === 1);
    await sleep(3 * ROUND_MS);
    for (const id of ids) expect(await blocked(id), id).toBe(false);
    expect(controller.controller.lastReport?.held.sort()).toEqual(ids);
    expect((await controller.metrics.breakerTrips.get()).values[0]?.value).toBe(1);

    await topology.master.client.set(CONFIRM_BLOCKS_KEY, 'test-operator', 'PX', 60_000);
    await until('mass blocks confirmed', 3000, async () => (await Promise.all(ids.map(blocked))).every(Boolean));
    expect(await topology.master.client.exists(CONFIRM_BLOCKS_KEY)).toBe(0);
    expect(JSON.parse((await masterHash(topology, ids[0]!)).credit_block_evidence!)).toMatchObject({ confirmedBy: 'test-operator' });
    // Lifted by top-ups, as usual (unblocks never wait for the breaker).
    await Promise.all(ids.map((id) => topology.master.client.hset(`account:${id}`, 'balance', '1000')));
    await until('mass unblocked', 3000, async () => (await Promise.all(ids.map(blocked))).every((b) => !b));
    await topology.master.client.del(...ids.map((id) => `calls:${id}`));
  });
});

describe('a crashed edge leaks no calls', () => {
  it('calls of an edge whose liveness expired are removed after the grace period, and audited', async () => {
    await topology.seed({ 'acct-crash': { enabled: true, balance: 100, rate: 0.01 } });
    const client = topology.master.client;
    await client.set(edgeAliveKey('edge-crashed'), 'inst-c', 'PX', 800);
    await client.set(edgeAliveKey('edge-alive'), 'inst-l', 'PX', 60_000);
    await writeCalls(topology, [
      callRecord('acct-crash', 'crash-1', 1, { node: 'edge-crashed', instance: 'inst-c' }),
      callRecord('acct-crash', 'crash-2', 1, { node: 'edge-crashed', instance: 'inst-c' }),
      callRecord('acct-crash', 'live-1', 1, { node: 'edge-alive', instance: 'inst-l' }),
    ]);
    await sleep(600);
    expect(await client.hlen('calls:acct-crash')).toBe(3);
    // Expiry at 0.8 s, then 0.5 s of grace.
    await until('crashed calls removed', 4000, async () => (await client.hlen('calls:acct-crash')) === 1);
    expect(Object.keys(await client.hgetall('calls:acct-crash'))).toEqual(['live-1']);
    const [entry] = await readAudit(client, { account: 'acct-crash', limit: 1 });
    expect(entry).toMatchObject({ action: 'calls-removed' });
    expect(JSON.parse(entry!.evidence).callIds.sort()).toEqual(['crash-1', 'crash-2']);
    await client.del('calls:acct-crash');
    await client.srem(CALLS_INDEX_KEY, 'acct-crash');
  });
});

describe('lease', () => {
  it('two controllers: one acts; when it is killed the other takes over once the lease expires', async () => {
    const second = controllerOn(topology, 'ctl-b');
    try {
      await sleep(5 * ROUND_MS);
      expect([controller.controller.isLeader, second.controller.isLeader]).toEqual([true, false]);
      expect(await topology.master.client.get(LEASE_KEY)).toMatch(/^ctl-a\//);

      // Killed: its connections drop without releasing the lease.
      controller.master.client.disconnect();
      await controller.stop();
      const killedAt = Date.now();
      await until('ctl-b acting', 5000, async () => second.controller.isLeader);
      expect(Date.now() - killedAt).toBeGreaterThan(500);
      expect(await topology.master.client.get(LEASE_KEY)).toMatch(/^ctl-b\//);

      // And it acts.
      await topology.seed({ 'acct-after': { enabled: true, balance: 1, rate: 1 } });
      await writeCalls(topology, [callRecord('acct-after', 'after-1', 5)]);
      await until('acct-after blocked by ctl-b', 3000, () => blocked('acct-after'));
      expect((await readAudit(topology.master.client, { account: 'acct-after', limit: 1 }))[0]?.controller).toBe('ctl-b');
    } finally {
      await second.stop();
    }
  });
});
