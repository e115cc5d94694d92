import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { edgeUnderTest, finalsReceived, type EdgeUnderTest } from '../helpers/edge-under-test.js';
import { startSipp, stopAllSipp } from '../helpers/sipp.js';

/**
 * The incident's replica trouble under live traffic: while SIPp places hundreds of calls for an
 * account with credit, one replica restarts and resyncs from empty (answering nil for existing
 * keys) and the other freezes. The edge must route every call: no 403, and no 503 while its
 * cache holds the account.
 */

const CALLS = 300;
const RATE = 60;
let edge: EdgeUnderTest;

// The edge's decisions, kept to explain any call that did not get its 200.
const decisions: string[] = [];
const decisionLog = pino({ level: 'info' }, { write: (line: string) => void decisions.push(line) });

beforeAll(async () => {
  edge = await edgeUnderTest({ seed: { 'acct-load': { enabled: true, balance: 1000, rate: 0.01 } }, logger: decisionLog });
});
afterAll(async () => {
  await edge?.stop();
  await stopAllSipp();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('replica faults during traffic', () => {
  it(`${CALLS} calls at ${RATE}/s through a resync from empty and a frozen replica: every one routed`, async () => {
    const [first, second] = edge.topology.replicas as [typeof edge.topology.replicas[0], typeof edge.topology.replicas[0]];
    const caller = await startSipp({
      scenario: 'edge-uac',
      vars: { HOLD: '100' },
      remote: edge.path.sipTarget,
      injection: [['acct-load']],
      service: 'callee',
      calls: CALLS,
      rate: RATE,
      timeoutMs: 60_000,
    });
    const faults: string[] = [];
    try {
      await sleep(1000); // the cache warms on the first calls
      await first!.restartFromEmpty({ holdSyncMs: 2000 });
      faults.push('replica 1 resyncing from empty');
      second!.freeze();
      faults.push('replica 2 frozen');
      await sleep(1500);
      second!.thaw();
      await first!.waitForSync();
    } finally {
      second!.thaw();
    }
    const result = await caller.done;
    expect(result.killed, result.output.slice(-2000)).toBe(false);

    // What callers saw: each call's answer to its INVITE (retransmitted 200s counted once; a
    // machine busy enough to make SIPp flag a late retransmission as unexpected changes nothing).
    const answerOf = new Map<string, number>();
    const statuses = new Set<number>();
    for (const f of finalsReceived(result)) {
      statuses.add(f.status!);
      const callId = f.headers['call-id']![0]!;
      if (!answerOf.has(callId)) answerOf.set(callId, f.status!);
    }
    expect(faults).toHaveLength(2);
    expect(answerOf.size).toBe(CALLS);
    const notRouted = decisions.filter((line) => line.includes('"msg":"decision"') && !line.includes('"outcome":"route"'));
    expect([...statuses], `decisions other than route:\n${notRouted.slice(0, 5).join('')}`).toEqual([200]);
    // The faults were real: decisions came from the cache for a while.
    const stale = await edge.path.edge.metrics.staleServes.get();
    expect(stale.values.reduce((sum, v) => sum + v.value, 0)).toBeGreaterThan(0);
  }, 90_000);
});
