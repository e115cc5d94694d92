import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callStartArgs, defineCallScripts, parseCallRecord } from '../../src/calls/records.js';
import { startTopology } from '../../src/dev/topology.js';
import { CallRecorder } from '../../src/edge/call-records.js';
import { silentLogger } from '../../src/log.js';
import { until } from '../helpers/controller.js';
import { assertSippRan, edgeUnderTest, finalsReceived, type EdgeUnderTest } from '../helpers/edge-under-test.js';
import { startSipp, stopAllSipp } from '../helpers/sipp.js';
import { accountKey, callsKey, edgeAliveKey } from '../../src/redis/keys.js';

/**
 * The edge's call-event queue when it fills: while the master hangs, events beyond queue_max are
 * dropped, counted and logged, never silently; once a master answers again the edge re-asserts
 * its calls from memory, so the records on the master end up exact anyway.
 */

let edge: EdgeUnderTest;

beforeAll(async () => {
  edge = await edgeUnderTest({
    sentinels: 3,
    seed: { 'acct-burst': { enabled: true, balance: 100, rate: 0.01 } },
    config: (generated) => ({ ...generated, calls_in_progress: { queue_max: 2, master_timeout_ms: 300 } }),
  });
}, 60_000);
afterAll(async () => {
  await edge?.stop();
  await stopAllSipp();
});

const total = async (name: 'dropped' | 'resyncs') => (await edge.path.edge.records!.metrics[name].get()).values.reduce((sum, v) => sum + v.value, 0);

describe('a full call-event queue', () => {
  it('drops beyond queue_max with a count, then re-asserts the calls: the records end up exact', async () => {
    const records = edge.path.edge.records!;
    const old = edge.topology.master;
    old.freeze();
    try {
      // Four calls answered while the master hangs: four start events for a queue of two.
      const calls = await startSipp({ scenario: 'edge-uac', vars: { HOLD: '9000' }, remote: edge.path.sipTarget, injection: [['acct-burst']], service: 'callee', calls: 4, rate: 40 });
      await until('events dropped', 5000, async () => (await total('dropped')) >= 2);

      await edge.topology.waitForFailover(20_000);
      const client = edge.topology.master.client;
      await until('calls re-asserted on the new master', 8000, async () => records.queued === 0 && (await client.hlen(callsKey('acct-burst'))) === 4);
      expect(await total('resyncs')).toBeGreaterThanOrEqual(1);

      const result = await calls.done;
      assertSippRan(result, 'calls through the outage');
      expect(finalsReceived(result).map((m) => m.status)).toEqual([200, 200, 200, 200]);
      await until('calls ended on the master', 5000, async () => (await client.hlen(callsKey('acct-burst'))) === 0);
    } finally {
      if (old.state === 'frozen') old.thaw();
    }
  }, 60_000);
});

describe('a write the master lost', () => {
  it('an end acknowledged and then lost (a failover before it replicated) is ended again by the reconciliation, with its debit', async () => {
    const lossy = await edgeUnderTest({
      sentinels: 1,
      seed: { 'acct-lost-end': { enabled: true, balance: 100, rate: 6 } },
      // Liveness renewed (and the records reconciled) every 300 ms.
      config: (generated) => ({ ...generated, calls_in_progress: { liveness_ttl_ms: 900 } }),
    });
    try {
      const client = defineCallScripts(lossy.topology.master.client);
      const key = callsKey('acct-lost-end');
      // The recorder must reach the master (its liveness key) before the call: on a loaded machine
      // it can take seconds, and a start and end written together leave no record to see.
      const { instance } = lossy.path.edge.records!;
      await until("the edge's recorder on the master", 15_000, async () => {
        const alive = await client.keys(edgeAliveKey('*'));
        return alive.length > 0 && (await client.mget(...alive)).includes(instance);
      });
      const call = await startSipp({ scenario: 'edge-uac', vars: { HOLD: '3000' }, remote: lossy.path.sipTarget, injection: [['acct-lost-end']], service: 'callee', calls: 1 });
      let raw: string | undefined;
      await until('the call recorded', 10_000, async () => (raw = Object.values(await client.hgetall(key))[0]) !== undefined);
      assertSippRan(await call.done, 'one call of 3 s');
      await until('the call ended on the master', 5000, async () => (await client.hlen(key)) === 0);
      const debited = Number(await client.hget(accountKey('acct-lost-end'), 'balance'));
      expect(debited).toBeLessThan(100);

      // The master loses the end: the record is back as it was, the balance before the debit.
      const record = parseCallRecord(raw!)!;
      await client.hset(accountKey('acct-lost-end'), 'balance', '100');
      expect(await client.callStart(...callStartArgs(record))).toBe(1);
      await until('the record ended again by the edge', 5000, async () => (await client.hlen(key)) === 0);
      expect(Number(await client.hget(accountKey('acct-lost-end'), 'balance'))).toBeCloseTo(debited, 6);
    } finally {
      await lossy.stop();
    }
  }, 60_000);
});

describe('an edge restarted after a crash', () => {
  it("ends the calls its predecessor left on the master, charging them up to now (their end can no longer be known)", async () => {
    const t = await startTopology({ replicas: 1, sentinels: 1 });
    try {
      await t.seed({ 'acct-orphan': { enabled: true, balance: 100, rate: 6 } });
      const options = { node: 'edge-x', masterName: t.masterName, sentinels: t.sentinelAddresses(), queueMax: 100, livenessTtlMs: 900, masterTimeoutMs: 500, logger: silentLogger };
      const crashed = new CallRecorder(options);
      crashed.routed('call-orphan', 'acct-orphan', 6);
      crashed.answered('call-orphan');
      const key = callsKey('acct-orphan');
      await until('the call recorded', 5000, async () => (await t.master.client.hlen(key)) === 1);
      const start = parseCallRecord(Object.values(await t.master.client.hgetall(key))[0]!)!.start;
      // The process dies with its call in progress: the record stays.
      await crashed.stop();
      await new Promise((resolve) => setTimeout(resolve, 500));
      const restarted = new CallRecorder(options);
      try {
        await until("the predecessor's call ended", 5000, async () => (await t.master.client.hlen(key)) === 0);
        const balance = Number(await t.master.client.hget(accountKey('acct-orphan'), 'balance'));
        // Charged at 6 a minute from its start to about the restart: at least the 0.5 s waited.
        expect(balance).toBeLessThan(100 - (6 * 500) / 60_000);
        expect(balance).toBeGreaterThanOrEqual(100 - (6 * (Date.now() - start)) / 60_000);
      } finally {
        await restarted.stop();
      }
    } finally {
      await t.stop();
    }
  }, 30_000);
});
