import type { AccountState } from '../accounts/account-state.js';
import type { CallsInProgress } from '../policy/decide.js';

/**
 * Calls in progress of an account for its channel limit, as the edge can know them:
 * - the replica's HLEN calls:{id}, read in the same MULTI as the account (all edges' calls), and
 * - this edge's own calls, counted from the moment it routes one (the master learns of a call
 *   only once it is answered, and a queued event may not have landed yet).
 * The larger of the two is the best lower bound. When the replica count cannot be read, the
 * count is unknown and the decision table applies channel_fail_policy with the last count seen:
 * the one read with the cached copy the call is decided on, so the count is exactly as old as the
 * copy (the basis names that age). A count remembered from an older decision could be minutes old
 * and refuse an account whose calls had long ended (the randomized soak found it).
 */
export function callsInProgressOf(state: AccountState, local: number): CallsInProgress {
  const fromReplica = state.lookup.outcome === 'found' ? state.lookup.callsInProgress : undefined;
  return callsInProgressFrom(fromReplica, local, state.cached?.callsInProgress);
}

/** Pure: the count the decision table gets. */
export function callsInProgressFrom(fromReplica: number | undefined, local: number, lastSeen: number | undefined): CallsInProgress {
  if (fromReplica !== undefined) return { known: true, count: Math.max(fromReplica, local) };
  return { known: false, lastSeen: Math.max(lastSeen ?? 0, local) };
}
