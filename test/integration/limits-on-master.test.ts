import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TAKE_RATE_LUA } from '../../src/calls/call-rate.js';
import { TAKE_SLOT_LUA, SLOT_KEY_COUNT, takeSlotArgs } from '../../src/calls/channel-slots.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { CallRecorder } from '../../src/edge/call-records.js';
import { silentLogger } from '../../src/log.js';
import { callsKey, rateKey, setupKey } from '../../src/redis/keys.js';
import { until } from '../helpers/controller.js';

/**
 * The limits' steps on a real master: the channel slot (src/calls/channel-slots.ts), what two
 * edges near an account's limit rely on so that they never both take its last channel, and the
 * calls-per-second window (src/calls/call-rate.ts), so that together they never admit more than
 * max_cps in any second.
 */

let topology: Topology;
const client = () => topology.master.client;
/** `edgeLimit`: the limit the edge read (2, as seeded for 'two'); `check: false` for a call admitted from memory. */
const take = (account: string, callId: string, o: { ttlMs?: number; check?: boolean; edgeLimit?: number } = {}) =>
  client().eval(TAKE_SLOT_LUA, SLOT_KEY_COUNT, ...takeSlotArgs(account, callId, o.ttlMs ?? 10_000, o.check === false ? undefined : (o.edgeLimit ?? 2))) as Promise<[number, number]>;
const takeRate = (callId: string, maxCps: number, check = true) => client().eval(TAKE_RATE_LUA, 1, rateKey('acct'), callId, maxCps, check ? 'check' : '') as Promise<[number, number]>;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  topology = await startTopology({ replicas: 1, sentinels: 1 });
});

afterAll(async () => {
  await topology?.stop();
});

beforeEach(async () => {
  await client().flushall();
  await topology.seed({ two: { enabled: true, balance: 10, max_channels: 2 }, free: { enabled: true, balance: 10 } });
});

describe('a channel slot taken on the master', () => {
  it('is taken while records and slots together are under max_channels, then refused; a retry of the same call keeps its slot', async () => {
    expect(await take('two', 'c1')).toEqual([1, 1]);
    expect(await take('two', 'c1')).toEqual([1, 1]);
    await client().hset(callsKey('two'), 'answered', '{}');
    expect(await take('two', 'c2')).toEqual([0, 2]);
    await client().zrem(setupKey('two'), 'c1');
    expect(await take('two', 'c2')).toEqual([1, 2]);
  });

  it("a slot lapses by itself (its edge died), and the next take drops it", async () => {
    expect(await take('two', 'c1', { ttlMs: 50 })).toEqual([1, 1]);
    expect(await take('two', 'c2', { ttlMs: 50 })).toEqual([1, 2]);
    expect(await take('two', 'c3')).toEqual([0, 2]);
    await sleep(80);
    expect(await take('two', 'c3')).toEqual([1, 1]);
  });

  it('a call admitted from memory (no check) always takes its slot; an account with no limit on the master is never refused, whatever the edge read', async () => {
    await take('two', 'c1');
    await take('two', 'c2');
    expect(await take('two', 'c3', { check: false })).toEqual([1, 3]);
    for (let i = 0; i < 5; i++) expect((await take('free', `f${i}`, { edgeLimit: 1 }))[0]).toBe(1);
  });

  it("the master's limit decides, not the edge's copy; an account the master lost (dataset lost, edges admitting from their copies) is held to the edge's limit", async () => {
    expect(await take('two', 'c1', { edgeLimit: 1 })).toEqual([1, 1]);
    expect(await take('two', 'c2', { edgeLimit: 1 })).toEqual([1, 2]);
    expect(await take('two', 'c3', { edgeLimit: 5 })).toEqual([0, 2]);
    await client().flushall();
    expect(await take('two', 'c1', { edgeLimit: 2 })).toEqual([1, 1]);
    expect(await take('two', 'c2', { edgeLimit: 2 })).toEqual([1, 2]);
    expect(await take('two', 'c3', { edgeLimit: 2 })).toEqual([0, 2]);
  });
});

describe("an edge's slots", () => {
  const recorder = (livenessTtlMs = 900) => new CallRecorder({ node: 'edge-s', masterName: topology.masterName, sentinels: topology.sentinelAddresses(), queueMax: 100, livenessTtlMs, masterTimeoutMs: 500, logger: silentLogger });
  const slots = () => client().zrange(setupKey('two'), '0', '-1');

  it('taken near the limit, given back when the call fails, moved to its record when it is answered', async () => {
    const r = recorder();
    try {
      await until('the master reachable', 5000, async () => (await r.takeSlot('probe', 'free', 1, 500)).taken === true);
      expect(await r.takeSlot('c1', 'two', 2, 500)).toEqual({ taken: true, inUse: 1 });
      r.holdSlot('c2', 'two');
      await until('the memory admission written', 5000, async () => (await slots()).length === 2);
      expect(await r.takeSlot('c3', 'two', 2, 500)).toEqual({ taken: false, inUse: 2 });
      // c1 fails (never answered): its slot goes back.
      r.ended('c1');
      await until('the slot of the failed call given back', 5000, async () => (await slots()).join() === 'c2');
      // c2 is answered: its record holds the channel, its slot goes.
      r.routed('c2', 'two', undefined);
      r.answered('c2');
      await until('the slot moved to the record', 5000, async () => (await slots()).length === 0 && (await client().hlen(callsKey('two'))) === 1);
      expect(await r.takeSlot('c3', 'two', 2, 500)).toEqual({ taken: true, inUse: 2 });
    } finally {
      await r.stop();
    }
  });

  it('renewed while the call rings; lapse once the process is gone', async () => {
    const r = recorder(600);
    await until('the master reachable', 5000, async () => (await r.takeSlot('c1', 'two', 2, 500)).taken === true);
    // Several times its TTL: still held, renewed at each liveness renewal.
    await sleep(1500);
    expect(await take('two', 'c9')).toEqual([1, 2]);
    await client().zrem(setupKey('two'), 'c9');
    await r.stop();
    await sleep(700);
    expect(await take('two', 'c9')).toEqual([1, 1]);
    expect(await slots()).toEqual(['c9']);
  });
});

describe('the last second of admissions on the master', () => {
  it('takes calls while fewer than max_cps were admitted in the last second, then refuses; a call admitted from memory is always added', async () => {
    expect(await takeRate('c1', 2)).toEqual([1, 1]);
    expect(await takeRate('c2', 2)).toEqual([1, 2]);
    expect(await takeRate('c3', 2)).toEqual([0, 2]);
    expect(await takeRate('c4', 2, false)).toEqual([1, 3]);
    expect(await takeRate('c1', 5)).toEqual([1, 3]);
  });

  it('slides: a second after the first admissions there is room again, without waiting for a clock second to turn', async () => {
    await takeRate('c1', 2);
    await sleep(600);
    await takeRate('c2', 2);
    expect((await takeRate('c3', 2))[0]).toBe(0);
    await sleep(450);
    expect(await takeRate('c3', 2)).toEqual([1, 2]);
    expect((await takeRate('c4', 2))[0]).toBe(0);
  });

  it('leaves nothing behind once an account stops calling', async () => {
    await takeRate('c1', 2);
    expect(await client().pttl(rateKey('acct'))).toBeGreaterThan(1000);
    await sleep(2100);
    expect(await client().exists(rateKey('acct'))).toBe(0);
  });
});
