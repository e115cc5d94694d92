import { BadAccountValue, parseAccount } from '../accounts/account.js';
import { parseCallRecord } from '../calls/records.js';
import type { CallTotals } from '../calls/totals.js';

/**
 * The controller's rules for one account in one round (pure: no I/O, the clock is an argument).
 *
 * projected balance = balance - sum over its calls in progress of rate x minutes so far, computed
 * from the account's call totals (src/calls/totals.ts): the same sum, as arithmetic on one hash.
 * At or below zero the account is *exhausted*; above, *funded*. Anything the rule needs that is
 * missing or does not parse makes the account *unknown* for the round: no block, no unblock.
 * Reading "no value" as "no credit" was the incident's bug.
 */

/** Hash fields the controller writes next to `credit_blocked` (the edge ignores them). */
export const BLOCKED_BY_FIELD = 'credit_blocked_by';
export const EVIDENCE_FIELD = 'credit_block_evidence';
export const CONTROLLER_MARK = 'controller';

export interface AccountReads {
  accountId: string;
  /** HGETALL account:{id}; null when the read failed. An empty object is a missing hash. */
  account: Record<string, string> | null;
  /** HGETALL calls:{id}; null when the read failed. */
  calls: Record<string, string> | null;
  /** Call-IDs whose edge is presumed dead but not yet past the grace period: not countable yet. */
  doubtfulCalls?: ReadonlySet<string>;
}

export type Assessment = Unknown | NotCreditLimited | Assessed;

export interface Unknown {
  kind: 'unknown';
  accountId: string;
  /** Short cause for metrics: missing-account, bad-account, no-balance, bad-call-record, no-rate, read-failed, edge-in-doubt. */
  cause: string;
  detail: string;
}

export interface NotCreditLimited {
  kind: 'not-credit-limited';
  accountId: string;
}

export interface Assessed {
  kind: 'funded' | 'exhausted';
  accountId: string;
  balance: number;
  /** Cost of the calls in progress so far. */
  spent: number;
  projected: number;
  calls: number;
  creditBlocked: boolean;
  /** The block (if any) was set by the controller, so the controller may lift it. */
  blockedByController: boolean;
}

const round6 = (n: number) => Math.round(n * 1e6) / 1e6;

/** The totals of a set of call records, as the Lua steps keep them (doubtful calls noted apart). */
export function totalsOf(calls: Record<string, string>, doubtful?: ReadonlySet<string>): { totals: CallTotals; doubtful: boolean } {
  const records = Object.entries(calls).map(([callId, raw]) => ({ callId, record: parseCallRecord(raw) }));
  const starts = records.flatMap((r) => (r.record ? [r.record.start] : []));
  const base = starts.length > 0 ? Math.min(...starts) : 0;
  const t: CallTotals = { calls: 0, bad: 0, base, rated: 0, ratedT: 0, unrated: 0, unratedT: 0 };
  let inDoubt = false;
  for (const { callId, record } of records) {
    if (doubtful?.has(callId)) inDoubt = true;
    t.calls++;
    if (!record) t.bad++;
    else if (record.rate !== undefined) {
      t.rated += record.rate;
      t.ratedT += record.rate * (record.start - base);
    } else {
      t.unrated++;
      t.unratedT += record.start - base;
    }
  }
  return { totals: t, doubtful: inDoubt };
}

/** From the call records themselves (the sweep's truth, and the rules' unit tests). */
export function assess(reads: AccountReads, now: number): Assessment {
  if (reads.account === null || reads.calls === null) return { kind: 'unknown', accountId: reads.accountId, cause: 'read-failed', detail: 'account or calls could not be read' };
  const { totals, doubtful } = totalsOf(reads.calls, reads.doubtfulCalls);
  return assessTotals({ accountId: reads.accountId, account: reads.account, totals, inDoubt: doubtful }, now);
}

export interface TotalsReads {
  accountId: string;
  /** HGETALL account:{id}; null when the read failed. An empty object is a missing hash. */
  account: Record<string, string> | null;
  /** The account's call totals; null when the read failed or they do not parse. */
  totals: CallTotals | null;
  /** Some of its calls are on an edge whose liveness lapsed, within the grace period. */
  inDoubt?: boolean;
}

/** The rules on an account's hash and call totals. */
export function assessTotals(reads: TotalsReads, now: number): Assessment {
  const { accountId, totals: t } = reads;
  const unknown = (cause: string, detail: string): Unknown => ({ kind: 'unknown', accountId, cause, detail });
  if (reads.account === null || t === null) return unknown('read-failed', 'account or call totals could not be read');
  if (Object.keys(reads.account).length === 0) return unknown('missing-account', `account:${accountId} does not exist`);

  let account;
  try {
    account = parseAccount(accountId, reads.account);
  } catch (err) {
    if (err instanceof BadAccountValue) return unknown('bad-account', err.message);
    throw err;
  }
  const blockedByController = account.creditBlocked && reads.account[BLOCKED_BY_FIELD] === CONTROLLER_MARK;
  if (account.balance === undefined) {
    // Absent balance means "not credit-limited" to the edge; a block of ours on it cannot be judged.
    return blockedByController ? unknown('no-balance', 'blocked by the controller but has no balance field') : { kind: 'not-credit-limited', accountId };
  }
  if (t.calls > 0 && reads.inDoubt) return unknown('edge-in-doubt', "some of its calls are on an edge whose liveness has lapsed; waiting out the grace period");
  if (t.bad > 0) return unknown('bad-call-record', `${t.bad} call record(s) do not parse`);
  if (t.unrated > 0 && account.rate === undefined) return unknown('no-rate', `${t.unrated} call(s) with no rate on the record nor on the account`);

  const elapsed = now - t.base;
  const spentPerMinute = t.rated * elapsed - t.ratedT + (t.unrated > 0 ? account.rate! * (t.unrated * elapsed - t.unratedT) : 0);
  const spent = t.calls > 0 ? spentPerMinute / 60_000 : 0;
  const projected = round6(account.balance - spent);
  return {
    kind: projected <= 0 ? 'exhausted' : 'funded',
    accountId,
    balance: account.balance,
    spent: round6(spent),
    projected,
    calls: t.calls,
    creditBlocked: account.creditBlocked,
    blockedByController,
  };
}

export type Action = 'block' | 'unblock' | 'none';

/** What the rules say to do. Never touches `enabled`; lifts only blocks the controller set. */
export function actionFor(assessment: Assessment): Action {
  if (assessment.kind === 'exhausted' && !assessment.creditBlocked) return 'block';
  if (assessment.kind === 'funded' && assessment.blockedByController) return 'unblock';
  return 'none';
}
