import type { Account } from '../accounts/account.js';
import type { Absent, CachedAccount, Found, Lookup, UnknownCause } from '../accounts/lookup.js';
import type { Rules, Verdict } from './rules.js';

/**
 * The decision table (pure: no I/O, no clock). Given what the lookup found, the cached copy and
 * the calls in progress, it says whether to route the call or how to reject it. A 403 comes only
 * from an authoritative answer: a replica in sync, or a cached copy of one younger than max-stale.
 */

/** Calls in progress of the account, as the edge could read them. */
export type CallsInProgress = { known: true; count: number } | { known: false; lastSeen?: number };

export interface DecisionInput {
  lookup: Lookup;
  /** The stale cache's copy; consulted only when the lookup is *unknown*. */
  cached?: CachedAccount;
  callsInProgress: CallsInProgress;
}

/** What the decision stood on, for logs, metrics and the optional debug header. */
export type Basis =
  | { source: 'replica'; replica: string; localCopy?: true }
  | { source: 'cache'; replica: string; ageMs: number; because: UnknownCause }
  | { source: 'none'; because: UnknownCause | 'overloaded' | 'shutting-down' | 'unidentified' | 'bypassed'; detail: string };

export type Decision = RouteDecision | RejectDecision;

export interface RouteDecision {
  action: 'route';
  account: Account;
  routeGroup: string;
  targets: string[];
  basis: Basis;
}

export interface RejectDecision {
  action: 'reject';
  verdict: Verdict;
  status: number;
  phrase: string;
  /** Reason header value (RFC 3326): Q.850 cause and a text saying which case it was. */
  reason: string;
  retryAfter?: number;
  account?: Account;
  basis: Basis;
}

export function decide(input: DecisionInput, rules: Rules): Decision {
  const onRecord = accountOnRecord(input, rules);
  if (onRecord) return decideForAccount(onRecord.account, onRecord.basis, input.callsInProgress, rules);
  const { lookup } = input;
  if (lookup.outcome === 'unknown') {
    return rejection('state-unknown', `account state unknown: ${lookup.cause}`, { source: 'none', because: lookup.cause, detail: lookup.detail }, rules);
  }
  // Absent: a found account is always on record.
  return rejection('unknown-account', 'no such account', replicaBasis(lookup), rules);
}

/** A replica's current answer (read now, or held by the local copy) as a decision's basis. */
function replicaBasis(lookup: Found | Absent): Basis {
  return lookup.fromLocalCopy ? { source: 'replica', replica: lookup.replica, localCopy: true } : { source: 'replica', replica: lookup.replica };
}

/**
 * The account copy a decision may stand on: the replica's answer, or else a cached copy younger
 * than max-stale. Undefined when there is none (absent, or unknown with no usable copy).
 */
export function accountOnRecord(input: Pick<DecisionInput, 'lookup' | 'cached'>, rules: Rules): { account: Account; basis: Basis } | undefined {
  const { lookup, cached } = input;
  if (lookup.outcome === 'found') return { account: lookup.account, basis: replicaBasis(lookup) };
  if (lookup.outcome === 'unknown' && cached && cached.ageMs <= rules.maxStaleMs) {
    return { account: cached.account, basis: { source: 'cache', replica: cached.replica, ageMs: cached.ageMs, because: lookup.cause } };
  }
  return undefined;
}

/** The 503 the edge gives before any Redis work when too many INVITEs are in flight. */
export function overloadRejection(rules: Rules): RejectDecision {
  return rejection('overloaded', 'edge overloaded', { source: 'none', because: 'overloaded', detail: 'too many INVITEs in flight' }, rules);
}

export function shuttingDownRejection(rules: Rules): RejectDecision {
  return rejection('shutting-down', 'edge shutting down', { source: 'none', because: 'shutting-down', detail: 'draining its calls in progress before it stops' }, rules);
}

function decideForAccount(account: Account, basis: Basis, calls: CallsInProgress, rules: Rules): Decision {
  if (!account.enabled) return rejection('account-disabled', 'account not enabled', basis, rules, account);
  if (account.creditBlocked || (account.balance !== undefined && account.balance <= 0)) {
    return rejection('out-of-credit', 'out of call credit', basis, rules, account);
  }
  if (atChannelLimit(account, calls, rules)) return rejection('channel-limit', 'channel limit reached', basis, rules, account);
  const targets = rules.routes[account.route];
  if (!targets || targets.length === 0) {
    return rejection('no-route', `no targets for route group ${account.route}`, basis, rules, account);
  }
  return { action: 'route', account, routeGroup: account.route, targets, basis };
}

function atChannelLimit(account: Account, calls: CallsInProgress, rules: Rules): boolean {
  if (account.maxChannels === undefined) return false;
  if (calls.known) return calls.count >= account.maxChannels;
  switch (rules.channelFailPolicy) {
    case 'allow':
      return false;
    case 'reject':
      return true;
    case 'last-seen':
      return (calls.lastSeen ?? 0) >= account.maxChannels;
  }
}

/** The Reason of the BYEs that end a call whose account ran out of credit: the out-of-credit verdict's cause. */
export function creditCutReason(rules: Rules): string {
  return `Q.850;cause=${rules.rejections['out-of-credit'].q850};text="out of call credit"`;
}

/** A rejection as the rules say it for this verdict, with a Reason text saying which case it was. */
export function rejection(verdict: Verdict, text: string, basis: Basis, rules: Rules, account?: Account): RejectDecision {
  const rejection = rules.rejections[verdict];
  const decision: RejectDecision = {
    action: 'reject',
    verdict,
    status: rejection.status,
    phrase: rejection.phrase,
    reason: `Q.850;cause=${rejection.q850};text="${text}"`,
    basis,
  };
  if (rejection.retryAfter !== undefined) decision.retryAfter = rejection.retryAfter;
  if (account) decision.account = account;
  return decision;
}
