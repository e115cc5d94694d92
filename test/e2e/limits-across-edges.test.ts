import { pino } from 'pino';
import { mostInOneSecond } from '../../bench/limits.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startCallPath, type CallPath } from '../../src/dev/call-path.js';
import type { RunningEdge } from '../../src/edge/start.js';
import { callsKey, rateKey, setupKey } from '../../src/redis/keys.js';
import { edgeUnderTest, finalsReceived, type EdgeUnderTest } from '../helpers/edge-under-test.js';
import { runSipp, startSipp, stopAllSipp, type SippResult } from '../helpers/sipp.js';

/**
 * The limits that hold across edges (issue 22), with real Redis (master, replicas, Sentinel) and
 * SIPp: two edges, each with its own SIP engine and carrier, both reading the same replicas and
 * taking channels and call-rate admissions on the same master. Bursts at one account through both
 * edges at once never get more calls through than its channel limit, and steady traffic above its
 * max_cps never more than max_cps in any second; the channels come back when the calls end.
 */

let a: EdgeUnderTest | undefined;
let b: CallPath | undefined;

afterEach(async () => {
  await stopAllSipp();
  await b?.stop();
  b = undefined;
  await a?.stop();
  a = undefined;
});

const LIMIT = 2;
const config = (node: string) => (c: Record<string, unknown>) => ({ ...c, node_id: node, decision_header: true, calls_in_progress: { enabled: true, liveness_ttl_ms: 900 } });

const WIDE = 8;
const MAX_CPS = 10;

async function twoEdges(): Promise<{ a: EdgeUnderTest; b: CallPath }> {
  const seed = {
    'acct-two': { enabled: true, balance: 100, rate: 0.01, max_channels: LIMIT },
    'acct-wide': { enabled: true, balance: 100, rate: 0.01, max_channels: WIDE },
    'acct-cps': { enabled: true, balance: 100, rate: 0.01, max_cps: MAX_CPS },
  };
  a = await edgeUnderTest({ sentinels: 1, seed, config: config('edge-a') });
  b = await startCallPath({ topology: a.topology, logger: pino({ level: 'silent' }), config: config('edge-b') });
  return { a, b };
}

/** `calls` INVITEs for the account as fast as SIPp sends them, each held `holdMs` once answered. */
function burst(target: string, calls: number, holdMs: number, account = 'acct-two') {
  return startSipp({ scenario: 'edge-uac', vars: { HOLD: String(holdMs) }, remote: target, injection: [[account]], service: 'callee', calls, rate: 200, limit: calls, timeoutMs: holdMs + 30_000 });
}

/** Calls admitted by each path, both edges together. */
async function admissions(edges: RunningEdge[], limit: 'channels' | 'cps' = 'channels'): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const edge of edges) for (const v of (await edge.metrics.limitAdmissions.get()).values) if (v.labels.limit === limit) out[String(v.labels.path)] = (out[String(v.labels.path)] ?? 0) + v.value;
  return out;
}

/** Both edges count each other (the liveness TTL, 900 ms here): before, every limited call goes to the master. */
async function sharing(...edges: RunningEdge[]): Promise<void> {
  await vi.waitFor(() => expect(edges.map((e) => e.records!.sharingEdges())).toEqual(edges.map(() => edges.length)), { timeout: 10_000, interval: 100 });
}

const statuses = (r: SippResult) => finalsReceived(r).map((m) => m.status!);

describe('the channel limit across two edges', () => {
  it('bursts through both edges at once: never more calls answered than the limit, the rest refused; the channels come back', async () => {
    const { a, b } = await twoEdges();
    const master = a.topology.master.client;
    let most = 0;
    // The most calls answered at once, from the records on the master.
    const poll = setInterval(() => void master.hlen(callsKey('acct-two')).then((n) => (most = Math.max(most, n))), 5);
    try {
      const [viaA, viaB] = await Promise.all([burst(a.path.sipTarget, 5, 2500), burst(b.sipTarget, 5, 2500)]);
      const [ra, rb] = await Promise.all([viaA.done, viaB.done]);
      const all = [...statuses(ra), ...statuses(rb)];
      expect(all).toHaveLength(10);
      expect(all.filter((s) => s === 200)).toHaveLength(LIMIT);
      expect(all.filter((s) => s === 403)).toHaveLength(10 - LIMIT);
      expect([...finalsReceived(ra), ...finalsReceived(rb)].filter((m) => m.status === 403).every((m) => m.reason === 'Channel Limit Reached')).toBe(true);
      expect(most).toBeLessThanOrEqual(LIMIT);
      // A limit of 2 is within no edge's memory share: every channel was taken on the master (the
      // calls past it refused there, or by the decision table once the count showed the limit).
      const paths = await admissions([a.path.edge, b.edge]);
      expect(paths.master).toBe(LIMIT);
      expect(paths.memory ?? 0).toBe(0);
    } finally {
      clearInterval(poll);
    }
    // Hung up: the records and the slots are gone, and the next call is routed through either edge.
    await vi.waitFor(async () => expect((await master.hlen(callsKey('acct-two'))) + (await master.zcard(setupKey('acct-two')))).toBe(0), { timeout: 5000, interval: 50 });
    await a.topology.master.waitForReplicas(2000);
    const next = await runSipp({ scenario: 'edge-uac', vars: { HOLD: '10' }, remote: b.sipTarget, injection: [['acct-two']], service: 'callee' });
    expect(statuses(next)).toEqual([200]);
  }, 60_000);

  it('an account with room: its first calls admitted from memory on each edge, the rest on the master, and still never over its limit', async () => {
    const { a, b } = await twoEdges();
    const master = a.topology.master.client;
    await sharing(a.path.edge, b.edge);
    let most = 0;
    const poll = setInterval(() => void master.hlen(callsKey('acct-wide')).then((n) => (most = Math.max(most, n))), 5);
    try {
      const [viaA, viaB] = await Promise.all([burst(a.path.sipTarget, 7, 2500, 'acct-wide'), burst(b.sipTarget, 7, 2500, 'acct-wide')]);
      const all = [...statuses(await viaA.done), ...statuses(await viaB.done)];
      expect(all.filter((s) => s === 200)).toHaveLength(WIDE);
      expect(all.filter((s) => s === 403)).toHaveLength(14 - WIDE);
      expect(most).toBeLessThanOrEqual(WIDE);
      const paths = await admissions([a.path.edge, b.edge]);
      expect(paths.memory).toBeGreaterThan(0);
      expect(paths.master).toBeGreaterThan(0);
      expect((paths.memory ?? 0) + (paths.master ?? 0)).toBe(WIDE);
    } finally {
      clearInterval(poll);
    }
  }, 60_000);
});

describe('the calls-per-second limit across two edges', () => {
  it('steady traffic at three times max_cps through both edges: no second on the master holds more than max_cps, the rest refused 403 Call Rate Limit Reached', async () => {
    const { a, b } = await twoEdges();
    const master = a.topology.master.client;
    await sharing(a.path.edge, b.edge);
    // Every admission the master saw (its clock), gathered while its window still holds it.
    const admitted = new Map<string, number>();
    const poll = setInterval(
      () =>
        void master.zrange(rateKey('acct-cps'), '0', '-1', 'WITHSCORES').then((r) => {
          for (let i = 0; i < r.length; i += 2) admitted.set(r[i]!, Number(r[i + 1]));
        }),
      200,
    );
    const steady = (target: string) => startSipp({ scenario: 'edge-uac', vars: { HOLD: '10' }, remote: target, injection: [['acct-cps']], service: 'callee', calls: 60, rate: 15, limit: 60, timeoutMs: 30_000 });
    try {
      const [viaA, viaB] = await Promise.all([steady(a.path.sipTarget), steady(b.sipTarget)]);
      const [ra, rb] = await Promise.all([viaA.done, viaB.done]);
      await new Promise((resolve) => setTimeout(resolve, 400));
      const finals = [...finalsReceived(ra), ...finalsReceived(rb)];
      expect(finals).toHaveLength(120);
      const ok = finals.filter((m) => m.status === 200).length;
      // Four seconds at 30 calls a second against 10: about 40 through, never starved.
      expect(ok).toBeGreaterThanOrEqual(30);
      expect(ok).toBeLessThanOrEqual(50);
      expect(finals.filter((m) => m.status !== 200).every((m) => m.status === 403 && m.reason === 'Call Rate Limit Reached')).toBe(true);
      expect(admitted.size).toBe(ok);
      expect(mostInOneSecond([...admitted.values()].map((ms) => ms * 1000))).toBeLessThanOrEqual(MAX_CPS);
      const paths = await admissions([a.path.edge, b.edge], 'cps');
      expect(paths.memory).toBeGreaterThan(0);
      expect(paths.master).toBeGreaterThan(0);
      expect((paths.memory ?? 0) + (paths.master ?? 0)).toBe(ok);
    } finally {
      clearInterval(poll);
    }
  }, 60_000);
});
