import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { connectMaster } from '../../src/admin/account-command.js';
import { initDataset } from '../../src/admin/dataset-command.js';
import { edgeUnderTest, finalsReceived, type EdgeUnderTest } from '../helpers/edge-under-test.js';
import { runSipp, startSipp, stopAllSipp, type SippResult } from '../helpers/sipp.js';
import { startCallPath, type CallPath } from '../../src/dev/call-path.js';
import { ACCEPT_DELETIONS_LUA } from '../../src/accounts/dataset.js';
import { ABSENCE_HOLD_KEY, accountKey, callsKey, DATASET_KEY } from '../../src/redis/keys.js';

/**
 * The lost dataset (issue: a master restarted empty, FLUSHALL, a bad migration's mass DEL) under
 * steady SIPp load with the edge's cache warm: every replica stays "connected, in sync" and answers
 * nil for every account, and not one caller may get a 403 for it. Accounts the edge read ahead of
 * the calls (the local copy's warm-up) are served from its cache like those it was called for;
 * accounts it never read get 503 + Retry-After (it cannot know), and the operator sees it (metric,
 * alert log line). One real deletion still gets its 403 Forbidden.
 */

const FUNDED = Array.from({ length: 240 }, (_, i) => `acct-f-${String(i).padStart(3, '0')}`);
/** In the dataset, never called before the fault: the edge read it only in its warm-up. */
const WARMED = 'acct-warmed';
/** Written after the edge's warm-up, never called before the fault: the edge has no copy of it. */
const UNSEEN = 'acct-unseen';
/** Carries one long call across the fault. */
const LONG = 'acct-long';
const RATE = 60;
/** Every funded account is called once (and so cached) before the fault. */
const WARM_MS = Math.ceil((FUNDED.length / RATE) * 1000) + 500;

let edge: EdgeUnderTest | undefined;
/** A second edge on the same replicas, with its own SIP engine and carrier. */
let peer: CallPath | undefined;
let logLines: string[] = [];

async function start(): Promise<EdgeUnderTest> {
  logLines = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
  edge = await edgeUnderTest({
    sentinels: 1,
    seed: Object.fromEntries([...FUNDED, WARMED, LONG].map((id) => [id, { enabled: true, balance: 100, rate: 0.01 }])),
    logger,
    // Liveness renewed every 300 ms, so call records come back quickly after the dataset is lost.
    config: (c) => ({ ...c, calls_in_progress: { enabled: true, liveness_ttl_ms: 900 } }),
  });
  const { cache } = edge.path.edge;
  await vi.waitFor(() => expect(cache.recall(WARMED, Date.now())).toBeDefined(), { timeout: 10_000, interval: 50 });
  // Both replicas' warm-ups done, so that none of them reads the account written next.
  const warmed = () => new Set(logLines.filter((l) => l.includes('"local copy warmed"') && !l.includes('"accounts":0')).map((l) => /"replica":"([^"]+)"/.exec(l)?.[1]));
  await vi.waitFor(() => expect(warmed().size).toBe(edge!.topology.replicas.length), { timeout: 10_000, interval: 50 });
  await edge.topology.master.client.hset(accountKey(UNSEEN), { enabled: '1', balance: '100' });
  await edge.topology.master.waitForReplicas(2000);
  return edge;
}

afterEach(async () => {
  await peer?.stop();
  peer = undefined;
  await edge?.stop();
  edge = undefined;
  await stopAllSipp();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Answer {
  account: string;
  status: number;
  phrase: string;
  reason: string;
}

/** Each call's answer to its INVITE (retransmissions counted once), with the account it was for. */
function answersOf(result: SippResult): Answer[] {
  const accountOf = new Map<string, string>();
  for (const m of result.messages) {
    if (m.direction === 'sent' && m.method === 'INVITE') accountOf.set(m.headers['call-id']![0]!, m.headers['x-account-id']![0]!);
  }
  const seen = new Map<string, Answer>();
  for (const f of finalsReceived(result)) {
    const callId = f.headers['call-id']![0]!;
    if (!seen.has(callId)) seen.set(callId, { account: accountOf.get(callId) ?? '?', status: f.status!, phrase: f.reason ?? '', reason: f.headers.reason?.[0] ?? '' });
  }
  return [...seen.values()];
}

/** Steady load over the funded accounts; `fault` runs once every one of them is cached. */
async function underLoad(eut: EdgeUnderTest, fault: () => Promise<void>): Promise<Answer[]> {
  const calls = FUNDED.length * 3;
  const caller = await startSipp({
    scenario: 'edge-uac',
    vars: { HOLD: '100' },
    remote: eut.path.sipTarget,
    injection: FUNDED.map((id) => [id]),
    service: 'callee',
    calls,
    rate: RATE,
    timeoutMs: 60_000,
  });
  // Every funded account answered once (and so cached) before the fault, however slowly SIPp
  // keeps its rate on a busy machine.
  await sleep(WARM_MS);
  const cache = eut.path.edge.cache;
  await vi.waitFor(() => expect(FUNDED.filter((id) => !cache.recall(id, Date.now()))).toEqual([]), { timeout: 20_000, interval: 50 });
  await fault();
  const result = await caller.done;
  expect(result.killed, result.output.slice(-2000)).toBe(false);
  const answers = answersOf(result);
  expect(answers).toHaveLength(calls);
  return answers;
}

function forbidden(answers: Answer[]): Answer[] {
  return answers.filter((a) => a.status === 403);
}

async function counted(eut: EdgeUnderTest, cause: string): Promise<number> {
  const metric = await eut.path.edge.metrics.unknownLookups.get();
  return metric.values.filter((v) => v.labels.cause === cause).reduce((sum, v) => sum + v.value, 0);
}

/** One call for an account and its answer. */
async function callOnce(eut: EdgeUnderTest, account: string): Promise<Answer> {
  const [answer] = answersOf(await eut.call(account));
  return answer!;
}

const alerts = () => logLines.filter((line) => /"alert":(true|"credit-edge-mass-absence")/.test(line));

describe('a lost dataset never becomes 403s', () => {
  it('the master restarted without its data: cached accounts are served (called or warmed), unseen ones get 503, no 403', async () => {
    const eut = await start();
    const answers = await underLoad(eut, async () => {
      await eut.topology.restartMasterEmpty();
    });
    expect(forbidden(answers)).toEqual([]);
    expect(answers.filter((a) => a.status !== 200).slice(0, 5)).toEqual([]);
    expect(await eut.topology.replicas[0]!.client.exists(accountKey(FUNDED[0]!))).toBe(0);

    expect(await callOnce(eut, WARMED)).toMatchObject({ status: 200 });
    expect(await callOnce(eut, UNSEEN)).toMatchObject({ status: 503, reason: expect.stringContaining('dataset-missing') });
    expect(await counted(eut, 'dataset-missing')).toBeGreaterThan(0);
    expect(alerts().some((line) => line.includes('dataset-missing'))).toBe(true);
  }, 90_000);

  it('FLUSHALL on the master: no 403; the edge re-asserts its call records; the marker back, answers are authoritative again', async () => {
    const eut = await start();
    const master = eut.topology.master.client;
    // One long call carried across the fault: its record must come back on the master.
    const longCall = await startSipp({ scenario: 'edge-uac', vars: { HOLD: '10000' }, remote: eut.path.sipTarget, injection: [[LONG]], service: 'callee', calls: 1, timeoutMs: 30_000 });
    let recordBack = false;
    const answers = await underLoad(eut, async () => {
      await master.flushall();
      for (let i = 0; i < 60 && !recordBack; i++) {
        await sleep(50);
        recordBack = (await master.hlen(callsKey(LONG))) === 1;
      }
    });
    expect(forbidden(answers)).toEqual([]);
    expect(answers.filter((a) => a.status !== 200).slice(0, 5)).toEqual([]);
    expect(await counted(eut, 'dataset-missing')).toBeGreaterThan(0);
    expect(alerts().some((line) => line.includes('dataset-missing'))).toBe(true);
    expect(recordBack).toBe(true);
    await longCall.done;

    // The operator re-provisions the accounts and declares the dataset: the edge reads it again.
    await master.hset(accountKey(UNSEEN), { enabled: '1', balance: '100' });
    const fenced = await connectMaster(parseConfig(JSON.stringify({ redis: { sentinel: eut.path.config.redis.sentinel } }), '(test)'));
    try {
      expect(await initDataset(fenced)).toMatch(/declared .* with 1 account/);
    } finally {
      await fenced.close();
    }
    await eut.topology.master.waitForReplicas(2000);
    expect(await callOnce(eut, UNSEEN)).toMatchObject({ status: 200 });
    expect(eut.path.edge.dataset.id).toBe(await master.hget(DATASET_KEY, 'id'));
  }, 90_000);

  it('a bad migration deletes 40% of the account keys at once: the mass-absence guard holds them, no 403', async () => {
    const eut = await start();
    const deleted = FUNDED.filter((_, i) => i % 5 < 2);
    const answers = await underLoad(eut, async () => {
      await eut.topology.master.client.del(...deleted.map(accountKey), accountKey(WARMED), accountKey(UNSEEN));
    });
    expect(forbidden(answers)).toEqual([]);
    expect(answers.filter((a) => a.status !== 200).slice(0, 5)).toEqual([]);
    expect(eut.path.edge.guard.state(Date.now()).open).toBe(true);
    expect(await counted(eut, 'mass-absence')).toBeGreaterThan(0);
    expect(alerts().some((line) => line.includes('credit-edge-mass-absence'))).toBe(true);
    // Deleted too: an account it only warmed is served from the cache; one it never read gets 503
    // while the guard is open, never a 403.
    expect(await callOnce(eut, WARMED)).toMatchObject({ status: 200 });
    expect(await callOnce(eut, UNSEEN)).toMatchObject({ status: 503, reason: expect.stringContaining('mass-absence') });
  }, 90_000);

  it('a quiet edge: the first deleted account it is called for opens the guard at once (a probe of others), no 403', async () => {
    const eut = await start();
    // A third of the accounts deleted; the edge carries no traffic, so absences cannot crowd in.
    await eut.topology.master.client.del(...FUNDED.filter((_, i) => i % 3 === 0).map(accountKey));
    await eut.topology.master.waitForReplicas(2000);
    const gone = FUNDED[0]!;
    const answers: Answer[] = [];
    // Past the confirmation time (1 s): without the probe the absence would stand, 403 Forbidden.
    for (const placed = Date.now(); Date.now() - placed < 2500; await sleep(300)) answers.push(await callOnce(eut, gone));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    expect(eut.path.edge.guard.state(Date.now())).toMatchObject({ open: true, why: expect.stringContaining('probe') });
  }, 60_000);

  it('one real deletion still gets 403 Forbidden, once confirmed, and trips nothing', async () => {
    const eut = await start();
    const gone = FUNDED[7]!;
    // Warm the copy of the account, then delete it for real.
    expect(answersOf(await eut.call(gone))[0]).toMatchObject({ status: 200 });
    await eut.topology.master.client.del(accountKey(gone));
    await eut.topology.master.waitForReplicas(2000);
    const deletedAt = Date.now();
    let answer: Answer | undefined;
    while (Date.now() - deletedAt < 10_000) {
      answer = answersOf(await eut.call(gone))[0];
      if (answer?.status !== 200) break;
    }
    expect(answer).toMatchObject({ status: 403, phrase: 'Forbidden', reason: expect.stringContaining('no such account') });
    // Held for the confirmation time only (1 s by default), then the real answer.
    expect(Date.now() - deletedAt).toBeGreaterThanOrEqual(1000);
    expect(eut.path.edge.guard.state(Date.now()).open).toBe(false);
    expect(answersOf(await eut.call(FUNDED[8]!))[0]).toMatchObject({ status: 200 });
  }, 60_000);
});

describe('an edge that has just started, during a mass deletion its peer recognised', () => {
  /** A second edge process's worth (node edge-b), started now: no copy of any account yet. */
  async function startPeer(eut: EdgeUnderTest): Promise<CallPath> {
    peer = await startCallPath({
      topology: eut.topology,
      logger: pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) }),
      config: (c) => ({ ...c, node_id: 'edge-b', calls_in_progress: { enabled: true, liveness_ttl_ms: 900 } }),
    });
    return peer;
  }

  async function callPeer(path: CallPath, account: string): Promise<Answer> {
    const [answer] = answersOf(await runSipp({ scenario: 'edge-uac', vars: { HOLD: '100' }, remote: path.sipTarget, injection: [[account]], service: 'callee' }));
    return answer!;
  }

  it("answers 503, never 403 Forbidden, while the peer's guard is open; 403 once an operator accepts the deletions", async () => {
    const eut = await start();
    const deleted = FUNDED.filter((_, i) => i % 3 === 0);
    await eut.topology.master.client.del(...deleted.map(accountKey));
    await eut.topology.master.waitForReplicas(2000);
    // The warm edge's first deleted account opens its guard (its probe), and it shares that.
    expect(await callOnce(eut, deleted[0]!)).toMatchObject({ status: 200 });
    await vi.waitFor(async () => expect(await eut.topology.master.client.hlen(ABSENCE_HOLD_KEY)).toBe(1), { timeout: 5000, interval: 50 });

    const fresh = await startPeer(eut);
    const answers: Answer[] = [];
    for (const id of deleted.slice(1, 6)) answers.push(await callPeer(fresh, id));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 503));
    // Its first answers may come before it has read the peer's hold: held as just started, then for the peer.
    expect(answers.at(-1)!.reason).toContain('mass-absence');
    expect(fresh.edge.guard.state(Date.now())).toMatchObject({ open: false, heldBy: [expect.stringMatching(/^edge-local:/)] });
    // An account that exists is routed as ever.
    expect(await callPeer(fresh, FUNDED[1]!)).toMatchObject({ status: 200 });

    await eut.topology.master.client.eval(ACCEPT_DELETIONS_LUA, 1, DATASET_KEY, 'test');
    await eut.topology.master.waitForReplicas(2000);
    await vi.waitFor(async () => expect(await callPeer(fresh, deleted[7]!)).toMatchObject({ status: 403, phrase: 'Forbidden' }), { timeout: 10_000, interval: 200 });
    // The warm edge removes its hold at its next renewal (every second): the fresh edge may answer first.
    await vi.waitFor(async () => expect(await eut.topology.master.client.hlen(ABSENCE_HOLD_KEY)).toBe(0), { timeout: 3000, interval: 50 });
  }, 90_000);

  it('started a moment before the deletion: it holds what it has no copy of until its peer has spoken, no 403', async () => {
    const eut = await start();
    const fresh = await startPeer(eut);
    const deleted = FUNDED.filter((_, i) => i % 3 === 0);
    await eut.topology.master.client.del(...deleted.map(accountKey));
    await eut.topology.master.waitForReplicas(2000);
    const warmEdge = callOnce(eut, deleted[0]!);
    const answers: Answer[] = [];
    for (const id of deleted.slice(1, 10)) answers.push(await callPeer(fresh, id));
    expect((await warmEdge).status).toBe(200);
    expect(forbidden(answers)).toEqual([]);
  }, 90_000);
});

