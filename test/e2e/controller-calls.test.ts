import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callsKey, parseCallRecord } from '../../src/calls/records.js';
import type { RunningController } from '../../src/control/start.js';
import { controllerOn, until } from '../helpers/controller.js';
import { assertSippRan, edgeUnderTest, finalsReceived, type EdgeUnderTest } from '../helpers/edge-under-test.js';
import { startSipp, stopAllSipp } from '../helpers/sipp.js';

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
    },
    config: (generated) => ({ ...generated, decision_header: true }),
  });
  controller = controllerOn(edge.topology, 'ctl-e2e', { wait_replicas: 0 });
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
      expect(await client.sismember('calls:accounts', 'acct-queue')).toBe(0);
    } finally {
      if (old.state === 'frozen') old.thaw();
    }
  }, 60_000);
});
