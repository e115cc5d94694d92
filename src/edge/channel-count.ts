import { LRUCache } from 'lru-cache';
import type { Lookup } from '../accounts/lookup.js';
import type { CallsInProgress } from '../policy/decide.js';

/**
 * Calls in progress of an account for its channel limit, as the edge can know them:
 * - the replica's HLEN calls:{id}, read in the same MULTI as the account (all edges' calls), and
 * - this edge's own calls, counted from the moment it routes one (the master learns of a call
 *   only once it is answered, and a queued event may not have landed yet).
 * The larger of the two is the best lower bound. When the replica count cannot be read, the
 * count is unknown and the decision table applies channel_fail_policy with the last count seen.
 */
export class ChannelCounts {
  private readonly lastSeen = new LRUCache<string, number>({ max: 100_000 });

  of(accountId: string, lookup: Lookup, local: number): CallsInProgress {
    const fromReplica = lookup.outcome === 'found' ? lookup.callsInProgress : undefined;
    const result = callsInProgressFrom(fromReplica, local, this.lastSeen.get(accountId));
    if (result.known) this.lastSeen.set(accountId, result.count);
    return result;
  }
}

/** Pure: the count the decision table gets. */
export function callsInProgressFrom(fromReplica: number | undefined, local: number, lastSeen: number | undefined): CallsInProgress {
  if (fromReplica !== undefined) return { known: true, count: Math.max(fromReplica, local) };
  return { known: false, lastSeen: Math.max(lastSeen ?? 0, local) };
}
