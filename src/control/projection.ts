import { BadAccountValue, parseAccount } from '../accounts/account.js';
import { parseCallRecord, type CallRecord } from '../calls/records.js';

/**
 * The controller's rules for one account in one round (pure: no I/O, the clock is an argument).
 *
 * projected balance = balance - sum over its calls in progress of rate x minutes so far.
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

export function assess(reads: AccountReads, now: number): Assessment {
  const { accountId } = reads;
  const unknown = (cause: string, detail: string): Unknown => ({ kind: 'unknown', accountId, cause, detail });
  if (reads.account === null || reads.calls === null) return unknown('read-failed', 'account or calls could not be read');
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

  let spent = 0;
  let calls = 0;
  for (const [callId, raw] of Object.entries(reads.calls)) {
    if (reads.doubtfulCalls?.has(callId)) return unknown('edge-in-doubt', `call ${callId}: its edge's liveness has lapsed; waiting out the grace period`);
    const record: CallRecord | undefined = parseCallRecord(raw);
    if (!record) return unknown('bad-call-record', `call ${callId}: record does not parse`);
    const rate = record.rate ?? account.rate;
    if (rate === undefined) return unknown('no-rate', `call ${callId}: no rate on the call record nor on the account`);
    spent += (rate * Math.max(0, now - record.start)) / 60_000;
    calls++;
  }
  const projected = round6(account.balance - spent);
  return {
    kind: projected <= 0 ? 'exhausted' : 'funded',
    accountId,
    balance: account.balance,
    spent: round6(spent),
    projected,
    calls,
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
