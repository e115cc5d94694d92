import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { assertSippRan, edgeUnderTest, finalsReceived, type EdgeUnderTest } from '../helpers/edge-under-test.js';
import { runSipp, startSipp, stopAllSipp } from '../helpers/sipp.js';
import { callsKey, DATASET_KEY } from '../../src/redis/keys.js';

/**
 * Limits the edge enforces on the wire: an account's channel limit counted from its calls in
 * progress, and the overload guard that answers 503 before any Redis work.
 */

let edge: EdgeUnderTest;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  edge = await edgeUnderTest({
    seed: { 'acct-two': { enabled: true, balance: 100, rate: 0.01, max_channels: 2 } },
    config: (generated) => ({ ...generated, overload: { max_in_flight: 2 }, decision_header: true, lookup: { replica_timeout_ms: 3000 } }),
  });
});
afterAll(async () => {
  await edge?.stop();
  await stopAllSipp();
});

describe('channel limit', () => {
  it('with max_channels 2, a third simultaneous call is refused; once calls end, the next routes', async () => {
    const held = await startSipp({ scenario: 'edge-uac', vars: { HOLD: '3000' }, remote: edge.path.sipTarget, injection: [['acct-two']], service: 'callee', calls: 2, rate: 20 });
    await sleep(800); // both calls answered and held (3 s)
    const third = await runSipp({ scenario: 'edge-uac', vars: { HOLD: '10' }, remote: edge.path.sipTarget, injection: [['acct-two']], service: 'callee' });
    assertSippRan(third, 'third call');
    const [refused] = finalsReceived(third);
    expect(refused).toMatchObject({ status: 403, reason: 'Channel Limit Reached' });
    expect(refused!.headers['x-credit-decision']?.[0]).toMatch(/^channel-limit; basis=replica.*; edge=[\w-]+$/);

    const first = await held.done;
    assertSippRan(first, 'held calls');
    expect(finalsReceived(first).map((m) => m.status)).toEqual([200, 200]);
    await sleep(500); // the edge learns of the hang-ups (CDR stop)
    const after = await runSipp({ scenario: 'edge-uac', vars: { HOLD: '10' }, remote: edge.path.sipTarget, injection: [['acct-two']], service: 'callee' });
    expect(finalsReceived(after).map((m) => m.status)).toEqual([200]);
  }, 30_000);

  it('decided from the cached copy (the dataset lost), the count is the one read with that copy: calls ended before it was read refuse nothing', async () => {
    // Two calls held, a third refused: this edge saw 2 calls in progress.
    const held = await startSipp({ scenario: 'edge-uac', vars: { HOLD: '2000' }, remote: edge.path.sipTarget, injection: [['acct-two']], service: 'callee', calls: 2, rate: 20 });
    await sleep(800);
    const third = await runSipp({ scenario: 'edge-uac', vars: { HOLD: '10' }, remote: edge.path.sipTarget, injection: [['acct-two']], service: 'callee' });
    expect(finalsReceived(third)[0]).toMatchObject({ status: 403, reason: 'Channel Limit Reached' });
    assertSippRan(await held.done, 'held calls');
    const master = edge.topology.master.client;
    await vi.waitFor(async () => expect(await master.hlen(callsKey('acct-two'))).toBe(0), { timeout: 5000, interval: 50 });
    await edge.topology.master.waitForReplicas(2000);
    // The warm-up reads every account again (no call meanwhile): the cached copy says 0 calls.
    const { warmer, pool, cache } = edge.path.edge;
    for (const replica of pool.replicas) await warmer!.warm(replica);
    expect(cache.recall('acct-two', Date.now())?.callsInProgress).toBe(0);

    // The dataset is lost (its marker first): the call is decided from the cached copy.
    const marker = await master.hgetall(DATASET_KEY);
    await master.del(DATASET_KEY);
    await edge.topology.master.waitForReplicas(2000);
    const missing = async () => (await edge.path.edge.metrics.unknownLookups.get()).values.find((v) => v.labels.cause === 'dataset-missing')?.value ?? 0;
    const missingBefore = await missing();
    try {
      const call = await runSipp({ scenario: 'edge-uac', vars: { HOLD: '10' }, remote: edge.path.sipTarget, injection: [['acct-two']], service: 'callee' });
      expect(finalsReceived(call).map((m) => m.status)).toEqual([200]);
      expect(await missing()).toBe(missingBefore + 1);
    } finally {
      await master.hset(DATASET_KEY, marker);
      await edge.topology.master.waitForReplicas(2000);
    }
  }, 30_000);
});

describe('overload guard', () => {
  it('above max_in_flight INVITEs being decided, answers 503 + Retry-After at once, never 403', async () => {
    // Replicas that take a while to answer keep INVITEs in flight, once the edge has noticed them
    // (a probe timed out): until then its local copy answers from memory.
    await Promise.all(edge.topology.replicas.map((r) => r.pause(2500)));
    await vi.waitFor(() => expect(edge.path.edge.pool.replicas.some((r) => r.inSync)).toBe(false), { timeout: 2000 });
    const burst = await runSipp({ scenario: 'edge-uac', vars: { HOLD: '10' }, remote: edge.path.sipTarget, injection: [['acct-ok']], service: 'callee', calls: 6, rate: 200, limit: 6 });
    const finals = finalsReceived(burst);
    const overloaded = finals.filter((f) => f.status === 503);
    expect(finals).toHaveLength(6);
    expect(finals.filter((f) => f.status === 403)).toEqual([]);
    expect(overloaded.length).toBeGreaterThanOrEqual(1);
    for (const f of overloaded) {
      expect(f.headers['retry-after']).toEqual(['2']);
      expect(f.headers.reason?.[0]).toBe('Q.850;cause=42;text="edge overloaded"');
    }
    expect((await edge.path.edge.metrics.overloadRejections.get()).values[0]?.value).toBe(overloaded.length);
  }, 30_000);
});
