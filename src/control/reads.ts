import type { Redis } from 'ioredis';
import { parseCallRecord } from '../calls/records.js';
import { edgeMember, parseTotals, type CallTotals } from '../calls/totals.js';
import { accountKey, BLOCKED_RUNS_DRY_KEY, CALLS_INDEX_KEY, callsKey, CONFIRM_BLOCKS_KEY, cutOrdersKey, DATASET_KEY, edgeAliveKey, edgeCallsKey, EDGES_KEY, LAYOUT_KEY, LEASE_KEY, LEGACY_KEYS, RUNS_DRY_KEY, totalsKey } from '../redis/keys.js';

/** What a round starts from: one pipelined round trip, whatever the number of accounts and calls. */
export interface RoundIndex {
  /** The dataset marker's id; null when there is none (a lost or flushed dataset: judge nothing). */
  datasetId: string | null;
  /**
   * Accounts not blocked whose projection reached zero by `now` (at most `max`), soonest first,
   * with when it did (ms): one blocked now may have its calls cut in the same batch.
   */
  dueAt: Map<string, number>;
  /** How many are due in all (the breaker counts them all, even those left for the next round). */
  dueTotal: number;
  /** Accounts the controller blocked that run dry later than `now` (or never): their block may lift. */
  liftable: string[];
  /** Accounts the controller blocked that ran dry before the cut's grace: their calls may be cut. */
  cuttable: string[];
  confirmBlocks: string | null;
  /** `{node}:{instance}` of every edge process with call records. */
  edges: string[];
  /** The key layout's version (LAYOUT_KEY); null before layout 3 (src/control/migration.ts migrates). */
  layout: string | null;
  /** An older edge still writes the shared indexes under their old names (LEGACY_KEYS, as sets). */
  legacyIndexes: boolean;
  /** Accounts with calls in progress (the breaker's share counts against them). */
  accountsWithCalls: number;
  /** Keys on the master (paces the sweep). */
  dbsize: number;
}

function check(replies: [Error | null, unknown][] | null): unknown[] {
  if (!replies) throw new Error('pipeline aborted');
  for (const [err] of replies) if (err) throw err;
  return replies.map(([, value]) => value);
}

/**
 * Throws when the master does not answer: the whole round is then unknown. `cutBefore`: read the
 * blocked accounts that ran dry before it (calls may be cut); undefined when calls are not cut.
 */
export async function readIndex(client: Redis, now: number, max: number, cutBefore?: number): Promise<RoundIndex> {
  const pipeline = client
    .pipeline()
    .hget(DATASET_KEY, 'id')
    .zrangebyscore(RUNS_DRY_KEY, '-inf', now, 'WITHSCORES', 'LIMIT', 0, max)
    .zcount(RUNS_DRY_KEY, '-inf', now)
    .zrangebyscore(BLOCKED_RUNS_DRY_KEY, `(${now}`, '+inf', 'LIMIT', 0, max)
    .get(CONFIRM_BLOCKS_KEY)
    .smembers(EDGES_KEY)
    .get(LAYOUT_KEY)
    .scard(CALLS_INDEX_KEY)
    .dbsize()
    .type(LEGACY_KEYS.accountsWithCalls.old)
    .type(LEGACY_KEYS.edges.old);
  if (cutBefore !== undefined) pipeline.zrangebyscore(BLOCKED_RUNS_DRY_KEY, '-inf', cutBefore, 'LIMIT', 0, max);
  const r = check(await pipeline.exec());
  const dueWithScores = r[1] as string[];
  const dueAt = new Map<string, number>();
  for (let i = 0; i + 1 < dueWithScores.length; i += 2) dueAt.set(dueWithScores[i]!, Number(dueWithScores[i + 1]));
  return {
    datasetId: (r[0] as string | null) || null,
    dueAt,
    dueTotal: r[2] as number,
    liftable: r[3] as string[],
    confirmBlocks: r[4] as string | null,
    edges: r[5] as string[],
    layout: r[6] as string | null,
    accountsWithCalls: r[7] as number,
    dbsize: r[8] as number,
    // A hash under an old name is the calls of an account so named: it is no index.
    legacyIndexes: r[9] === 'set' || r[10] === 'set',
    cuttable: cutBefore !== undefined ? (r[11] as string[]) : [],
  };
}

/** Edge node -> the instance its liveness key names, or null when the key is gone. */
export async function readLiveness(client: Redis, nodes: string[]): Promise<Map<string, string | null>> {
  const liveness = new Map<string, string | null>();
  if (nodes.length === 0) return liveness;
  const replies = await client.mget(...nodes.map(edgeAliveKey));
  nodes.forEach((node, i) => liveness.set(node, replies[i] ?? null));
  return liveness;
}

/** Call-ID -> account, for each of these edge processes (only read for edges whose liveness lapsed). */
export async function readEdgeCalls(client: Redis, edges: string[]): Promise<Map<string, Record<string, string>>> {
  const out = new Map<string, Record<string, string>>();
  if (edges.length === 0) return out;
  const pipeline = client.pipeline();
  for (const edge of edges) pipeline.hgetall(edgeCallsKey(edge));
  const r = check(await pipeline.exec());
  edges.forEach((edge, i) => out.set(edge, r[i] as Record<string, string>));
  return out;
}

export interface CandidateReads {
  /** The account hash (empty: missing) and its call totals (null: they do not parse). */
  account: Record<string, string>;
  totals: CallTotals | null;
}

/**
 * WATCHes what the round's write batch depends on (the lease, the dataset marker, and each
 * candidate's hash and call totals), then reads the candidates: a top-up, a call starting or
 * ending, another controller taking the lease, or a lost dataset in between aborts the batch.
 */
export async function readCandidates(client: Redis, ids: string[]): Promise<Map<string, CandidateReads>> {
  await client.watch(LEASE_KEY, DATASET_KEY, ...ids.flatMap((id) => [accountKey(id), totalsKey(id)]));
  const out = new Map<string, CandidateReads>();
  if (ids.length === 0) return out;
  const pipeline = client.pipeline();
  for (const id of ids) pipeline.hgetall(accountKey(id)).hgetall(totalsKey(id));
  const r = check(await pipeline.exec());
  ids.forEach((id, i) => out.set(id, { account: r[2 * i] as Record<string, string>, totals: parseTotals(r[2 * i + 1] as Record<string, string>) ?? null }));
  return out;
}

export interface CallToCut {
  accountId: string;
  callId: string;
  /** `{node}:{instance}` of the edge process that carries it. */
  edge: string;
}

/**
 * The call records of accounts whose calls may be cut, without those already ordered: WATCHes the
 * records and the order hashes, so a call ending or another controller's order aborts the batch.
 */
export async function readCallsToCut(client: Redis, ids: string[]): Promise<CallToCut[]> {
  if (ids.length === 0) return [];
  await client.watch(...ids.map(callsKey));
  const records = check(await ids.reduce((p, id) => p.hgetall(callsKey(id)), client.pipeline()).exec()) as Record<string, string>[];
  const calls: CallToCut[] = [];
  ids.forEach((accountId, i) => {
    for (const [callId, raw] of Object.entries(records[i]!)) {
      const record = parseCallRecord(raw);
      // A record that does not parse made the account unknown already; never cut on it.
      if (record && record.account === accountId) calls.push({ accountId, callId, edge: edgeMember(record.node, record.instance) });
    }
  });
  if (calls.length === 0) return [];
  const orderKeys = [...new Set(calls.map((c) => cutOrdersKey(c.edge)))];
  await client.watch(...orderKeys);
  const ordered = check(await calls.reduce((p, c) => p.hexists(cutOrdersKey(c.edge), c.callId), client.pipeline()).exec());
  return calls.filter((_, i) => ordered[i] === 0);
}

