import type { Redis } from 'ioredis';
import { accountKey } from '../accounts/account.js';
import { CALLS_INDEX_KEY, callsKey, edgeAliveKey, parseCallRecord } from '../calls/records.js';
import { LEASE_KEY } from './lease.js';

/** Accounts the controller has blocked: re-evaluated every round even with no calls, so it can lift its blocks. */
export const BLOCKED_INDEX_KEY = 'controller:blocked';
/** Set by `credit-edge controller --confirm-blocks` (or the admin API): let the held blocks through once. */
export const CONFIRM_BLOCKS_KEY = 'controller:confirm-blocks';

export interface RoundSnapshot {
  /** Account id -> its hash (empty: missing) and its calls hash; null where the read failed. */
  accounts: Map<string, { account: Record<string, string> | null; calls: Record<string, string> | null }>;
  /** Edge node -> the instance its liveness key names, or null when the key is gone. */
  liveness: Map<string, string | null>;
  confirmBlocks: string | null;
}

/**
 * One round's reads from the master, in three pipelined round trips. The account keys and the
 * lease are WATCHed first, so a write batch built from these reads aborts if an operator changed
 * an account (a top-up) or another controller took the lease in between. Throws when the master
 * does not answer: the whole round is then unknown.
 */
export async function readRound(client: Redis): Promise<RoundSnapshot> {
  const index = await client.pipeline().smembers(CALLS_INDEX_KEY).smembers(BLOCKED_INDEX_KEY).get(CONFIRM_BLOCKS_KEY).exec();
  if (!index) throw new Error('pipeline aborted');
  for (const [err] of index) if (err) throw err;
  const withCalls = index[0]![1] as string[];
  const blocked = index[1]![1] as string[];
  const ids = [...new Set([...withCalls, ...blocked])].sort();

  await client.watch(LEASE_KEY, ...ids.map(accountKey));
  const accounts: RoundSnapshot['accounts'] = new Map();
  if (ids.length > 0) {
    const pipeline = client.pipeline();
    for (const id of ids) pipeline.hgetall(accountKey(id)).hgetall(callsKey(id));
    const replies = await pipeline.exec();
    if (!replies) throw new Error('pipeline aborted');
    ids.forEach((id, i) => {
      const [accountErr, account] = replies[2 * i]!;
      const [callsErr, calls] = replies[2 * i + 1]!;
      accounts.set(id, { account: accountErr ? null : (account as Record<string, string>), calls: callsErr ? null : (calls as Record<string, string>) });
    });
  }

  const nodes = new Set<string>();
  for (const { calls } of accounts.values()) {
    for (const raw of Object.values(calls ?? {})) {
      const record = parseCallRecord(raw);
      if (record) nodes.add(record.node);
    }
  }
  const liveness = new Map<string, string | null>();
  if (nodes.size > 0) {
    const list = [...nodes];
    const replies = await client.mget(...list.map(edgeAliveKey));
    list.forEach((node, i) => liveness.set(node, replies[i] ?? null));
  }
  return { accounts, liveness, confirmBlocks: index[2]![1] as string | null };
}
