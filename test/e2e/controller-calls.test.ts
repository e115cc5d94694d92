import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCallRecord } from '../../src/calls/records.js';
import type { RunningController } from '../../src/control/start.js';
import { controllerOn, until } from '../helpers/controller.js';
import { assertSippRan, edgeUnderTest, finalsReceived, type EdgeUnderTest } from '../helpers/edge-under-test.js';
import { startSipp, stopAllSipp } from '../helpers/sipp.js';
import { CALLS_INDEX_KEY, callsKey, totalsKey } from '../../src/redis/keys.js';

/**
 * Calls in progress and the credit controller over the whole call path: SIPp callers, the edge
 * recording calls on the master through Sentinel, the controller blocking and unblocking, and
 * the edge answering from its replicas. Then a master outage with calls starting and ending.
 */

let edge: EdgeUnderTest;
let controller: RunningController;

beforeAll(async () => {
  edge = await edgeUnderTest({
    sentinels: 3,
    seed: {
      // 6 per minute = 0.1 per second: 0.3 lasts a call 3 s.
      'acct-meter': { enabled: true, balance: 0.3, rate: 6, max_channels: 10 },
      'acct-queue': { enabled: true, balance: 100, rate: 0.01, max_channels: 10 },
      // Named as the product's shared indexes were before layout 3 (src/redis/keys.ts).
      accounts: { enabled: true, balance: 100, rate: 1, max_channels: 2 },
      edges: { enabled: true, balance: 100, rate: 1, max_channels: 10 },
      layout: { enabled: true, balance: 100, rate: 1, max_channels: 10 },
      'acct-beside': { enabled: true, balance: 100, rate: 1, max_channels: 10 },
    },
    config: (generated) => ({ ...generated, decision_header: true }),
  });
  // Blocks only: these calls are meant to run on past zero (their debits are checked); ending
  // them is test/e2e/call-cut.test.ts's.
  controller = controllerOn(edge.topology, 'ctl-e2e', { wait_replicas: 0, cut_calls: { enabled: false } });
  await until('controller acting', 10_000, async () => controller.controller.isLeader);
}, 60_000);
afterAll(async () => {
  await controller?.stop();
  await edge?.stop();
  await stopAllSipp();
});

const master = async () => {
  const address = await edge.topology.currentMaster();
  return edge.topology.nodeAt(address)!.client;
};
const onReplicas = async (account: string, field: string) =>
  Promise.all(edge.topology.replicas.filter((r) => r.state === 'running').map((r) => r.client.hget(`account:${account}`, field)));

describe('out of credit during a call', () => {
  it('blocked within two rounds of crossing zero, next call 403 Out Of Call Credit; top-up -> unblocked by itself, next call routes', async () => {
    const held = await startSipp({ scenario: 'edge-uac', vars: { HOLD: '6000' }, remote: edge.path.sipTarget, injection: [['acct-meter']], service: 'callee', calls: 1 });
    const client = await master();
    await until('call recorded on the master', 3000, async () => (await client.hlen(callsKey('acct-meter'))) === 1);
    const answeredAt = parseCallRecord(Object.values(await client.hgetall(callsKey('acct-meter')))[0]!)!.start;
    await until('acct-meter blocked', 6000, async () => (await client.hget('account:acct-meter', 'credit_blocked')) === '1');
    // Crosses zero 3 s after the answer; rounds are 200 ms (plus the edge's clock vs ours: same host).
    expect(Date.now() - (answeredAt + 3000)).toBeLessThan(2 * 200 + 400);
    await until('block on the replicas', 2000, async () => (await onReplicas('acct-meter', 'credit_blocked')).every((v) => v === '1'));

    const refused = await edge.call('acct-meter');
    assertSippRan(refused, 'refused call');
    const [final] = finalsReceived(refused);
    expect(final).toMatchObject({ status: 403, reason: 'Out Of Call Credit' });
    expect(final!.headers.reason?.[0]).toBe('Q.850;cause=52;text="out of call credit"');

    await client.hset('account:acct-meter', 'balance', '100');
    await until('acct-meter unblocked on the replicas', 3000, async () => (await onReplicas('acct-meter', 'credit_blocked')).every((v) => v === '0'));
    const routed = await edge.call('acct-meter');
    assertSippRan(routed, 'call after top-up');
    expect(finalsReceived(routed).map((m) => m.status)).toEqual([200]);

    assertSippRan(await held.done, 'held call');
    await until('no calls left for acct-meter', 3000, async () => (await client.hlen(callsKey('acct-meter'))) === 0);
    // Each call's cost moved from its record into the balance when it ended: the held call
    // (about 6 s at 0.1 per second) and the short one after the top-up.
    const balance = Number(await client.hget('account:acct-meter', 'balance'));
    expect(balance).toBeLessThan(100 - 0.55);
    expect(balance).toBeGreaterThan(100 - 0.8);
  }, 30_000);
});

describe('accounts named as the product\'s own keys', () => {
  it('`accounts`, `edges` and `layout` place and end calls beside another account: calls in progress exact for all, the channel limit read, credit control on', async () => {
    const named = ['accounts', 'edges', 'layout', 'acct-beside'];
    const client = await master();
    const balances = await Promise.all(named.map(async (a) => Number(await client.hget(`account:${a}`, 'balance'))));
    const failedRounds = async () => ((await controller.metrics.rounds.get()).values.find((v) => v.labels.outcome === 'read-failed')?.value ?? 0);
    const failedBefore = await failedRounds();

    const held = await Promise.all(named.map((a) => startSipp({ scenario: 'edge-uac', vars: { HOLD: '3000' }, remote: edge.path.sipTarget, injection: [[a]], service: 'callee', calls: 2, rate: 20 })));
    await until('two calls recorded for each', 3000, async () => (await Promise.all(named.map((a) => client.hlen(callsKey(a))))).every((n) => n === 2));
    expect((await client.smembers(CALLS_INDEX_KEY)).sort()).toEqual(expect.arrayContaining(named));
    for (const a of named) expect(await client.hget(totalsKey(a), 'calls'), a).toBe('2');

    // `accounts` is at its limit of 2: the edge read its calls (HLEN calls:accounts) and says so.
    const third = await edge.call('accounts');
    assertSippRan(third, 'third call for accounts');
    expect(finalsReceived(third)[0]).toMatchObject({ status: 403, reason: 'Channel Limit Reached' });

    for (const [i, h] of held.entries()) {
      const r = await h.done;
      assertSippRan(r, `held calls of ${named[i]}`);
      expect(finalsReceived(r).map((m) => m.status)).toEqual([200, 200]);
    }
    await until('no calls left for any', 3000, async () => (await Promise.all(named.map((a) => client.hlen(callsKey(a))))).every((n) => n === 0));
    for (const [i, a] of named.entries()) {
      expect(await client.exists(totalsKey(a)), a).toBe(0);
      expect(await client.sismember(CALLS_INDEX_KEY, a), a).toBe(0);
      // Two calls of about 3 s at 1 per minute each moved into the balance: about 0.1.
      const spent = balances[i]! - Number(await client.hget(`account:${a}`, 'balance'));
      expect(spent, a).toBeGreaterThan(0.08);
      expect(spent, a).toBeLessThan(0.2);
      expect(await client.hget(`account:${a}`, 'credit_blocked'), a).not.toBe('1');
    }
    expect(await failedRounds()).toBe(failedBefore);
    expect(controller.controller.lastReport?.outcome).toBe('acted');
  }, 30_000);
});

describe('master outage', () => {
  it('call events are queued while the master hangs and replayed on the new master: calls in progress end up exact', async () => {
    const records = edge.path.edge.records!;
    const old = edge.topology.master;
    old.freeze();
    try {
      // Calls keep routing from the replicas: two stay up, one ends during the outage.
      const long = await startSipp({ scenario: 'edge-uac', vars: { HOLD: '7000' }, remote: edge.path.sipTarget, injection: [['acct-queue']], service: 'callee', calls: 2, rate: 20 });
      const short = await startSipp({ scenario: 'edge-uac', vars: { HOLD: '200' }, remote: edge.path.sipTarget, injection: [['acct-queue']], service: 'callee', calls: 1 });
      const shortResult = await short.done;
      assertSippRan(shortResult, 'short call during the outage');
      expect(finalsReceived(shortResult).map((m) => m.status)).toEqual([200]);
      expect(records.queued).toBeGreaterThan(0);

      await edge.topology.waitForFailover(20_000);
      const client = await master();
      await until('queue replayed on the new master', 5000, async () => records.queued === 0 && (await client.hlen(callsKey('acct-queue'))) === 2);
      const recorded = Object.values(await client.hgetall(callsKey('acct-queue'))).map((raw) => parseCallRecord(raw)!);
      expect(recorded.map((r) => [r.account, r.node, r.instance])).toEqual([
        ['acct-queue', 'edge-local', records.instance],
        ['acct-queue', 'edge-local', records.instance],
      ]);

      const longResult = await long.done;
      assertSippRan(longResult, 'long calls');
      expect(finalsReceived(longResult).map((m) => m.status)).toEqual([200, 200]);
      await until('calls ended on the new master', 3000, async () => (await client.hlen(callsKey('acct-queue'))) === 0);
      expect(await client.sismember(CALLS_INDEX_KEY, 'acct-queue')).toBe(0);
    } finally {
      if (old.state === 'frozen') old.thaw();
    }
  }, 60_000);
});
