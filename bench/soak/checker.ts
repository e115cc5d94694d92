import { countedSpan, mostAtOnce, overLimitEpisodes, wasRouted } from './calls-in-progress.js';
import { balanceLow, creditCalls, exhaustedIntervals, fundedIntervals, lowBound, type CreditCall } from './credit-model.js';
import type { FaultKind, FaultWindow, MasterEpoch, RecordedAccount, SoakCall, SoakHistory } from './history.js';
import { afterHealthyTime, intersectIntervals, meeting, mergeIntervals, subtractIntervals, type Interval } from './intervals.js';
import { RecordedStates, type StateVersion } from './recorded-state.js';

/**
 * The soak's invariant checker (pure: a recorded history in, violations out). It judges from the
 * outside: what the callers got (SIPp's traces) against what the operator recorded (definitions,
 * actions), the audit stream, and which node was master when. A violation needs certainty: every
 * timing doubt (propagation, a command's duration, a cached copy's age, a failed command that may
 * have been applied) is resolved in the product's favour, so what is left is a broken promise.
 *
 * A call's window runs from its INVITE minus the lookback (propagation, plus the cached copy's age
 * when decided from the stale cache) to its answer. The rules (test/unit/soak-checker.test.ts is
 * their spec, case by case):
 * - false-403: a 403 whose cause no possible recorded state shows in the window (Account Not
 *   Enabled: none disabled; Out Of Call Credit: none enabled and blocked or with balance <= 0,
 *   the balance run down by ended calls; another phrase: the account was fine throughout);
 * - forbidden-existing: 403 Forbidden while every possible state says the account exists;
 * - false-channel-limit: no limit in any possible state, or fewer calls than the limit counted
 *   over the window and one propagation time more;
 * - channel-overshoot: more calls of an account connected at once than its limit, unless one of
 *   them had been lost to the product by then (its edge killed, or its SIP server restarted,
 *   under it: its record ended, another call got its channel; or its record wiped with the
 *   dataset and not yet re-asserted by its edge; counted apart), or one of them was admitted while
 *   the master could not answer (a fault of the master: the edge decides on its own count, by
 *   design; counted apart too);
 * - unexpected-503: an edge's 503 for an account the same edge found within max-stale, with no
 *   restart of it, no delete, no 403 Forbidden from it in between;
 * - sip-server-503, no-answer: outside the SIP server's and the edges' restart windows;
 * - funded-blocked: a controller block while even the lowest possible projection exceeded the
 *   timing allowance, or a controller block left in place a bound after the account was funded;
 * - dry-not-blocked: certainly dry while calls are in progress (their cost ran the credit out) and
 *   no block within the bound of controller-healthy time;
 * - write-to-non-master: a controller write on a node that was the master of that instant by
 *   neither view: the newest promotion, nor the node a majority of the Sentinels named (in a
 *   failover both exist for a moment, and the old master cannot know yet);
 * - funded-cut: a call the network ended (the caller got the BYE: carriers here never hang up
 *   first) while even the lowest possible projection, when the controller decided its cut,
 *   exceeded the timing allowance; or cut with no cut in the audit stream, or on another
 *   account's evidence;
 * - cut-twice: a call that received more than one BYE (retransmissions aside);
 * - dry-not-cut: a call in progress while its account was certainly dry, not ended within the cut
 *   bound of controller-healthy time (settings.cutBoundMs; not judged without it). A call nobody
 *   can end any more (its edge was killed, or the SIP server restarted, under it) is counted apart;
 * - leaked-call-record, ghost-call-record: the final records, one each.
 */

export type ViolationKind =
  | 'false-403'
  | 'forbidden-existing'
  | 'unexpected-503'
  | 'sip-server-503'
  | 'no-answer'
  | 'false-channel-limit'
  | 'channel-overshoot'
  | 'funded-blocked'
  | 'dry-not-blocked'
  | 'write-to-non-master'
  | 'funded-cut'
  | 'cut-twice'
  | 'dry-not-cut'
  | 'leaked-call-record'
  | 'ghost-call-record';

export const VIOLATION_KINDS: readonly ViolationKind[] = [
  'false-403',
  'forbidden-existing',
  'unexpected-503',
  'sip-server-503',
  'no-answer',
  'false-channel-limit',
  'channel-overshoot',
  'funded-blocked',
  'dry-not-blocked',
  'write-to-non-master',
  'funded-cut',
  'cut-twice',
  'dry-not-cut',
  'leaked-call-record',
  'ghost-call-record',
];

export interface Violation {
  kind: ViolationKind;
  atMs: number;
  account?: string;
  callId?: string;
  edge?: string;
  detail: string;
}

export interface CheckFigures {
  calls: number;
  /** 403s judged (every 403). */
  judged403: number;
  /** 503s judged (every 503, the edges' and the SIP server's). */
  judged503: number;
  /** 503s and unanswered calls excused by a restart window or the end of the run. */
  exempted: number;
  /** Final answers of 300 and above other than 403 and 503 (a carrier's, a timeout's): no rule judges them, the report should show them. */
  otherFailures: number;
  /** Intervals in which an account certainly ran dry. */
  dryIntervals: number;
  /** ... of which lasted past their blocking deadline (blocked or not), so were judged. */
  dryIntervalsJudged: number;
  /** Controller blocks in the audit stream checked against the credit model. */
  blocksChecked: number;
  /** Episodes where an account with a channel limit had more calls connected at once than the limit. */
  channelLimitOvershoots: number;
  /** ... of which some call over the limit could no longer be seen by the product (its edge killed, its SIP server restarted, under it; its record wiped with the dataset). */
  overshootsUnseen: number;
  /** ... of which some call was admitted while the master could not answer (a fault of the master): decided on its edge's own count, by design. */
  overshootsWithoutMaster: number;
  /** ... and the others: violations (channel-overshoot). */
  overshootsConcurrent: number;
  /** The most calls over the limit in one such episode. */
  worstOvershoot: number;
  controllerWrites: number;
  cuts: CutFigures;
}

export interface CutFigures {
  /** Calls the network ended (a cut, as the caller saw it). */
  callsCut: number;
  /** Calls in progress while their account was certainly dry, judged by dry-not-cut. */
  dryCalls: number;
  /** ... and those nobody could end any more (their edge killed, or the SIP server restarted, under them): not judged. */
  dryCallsLost: number;
  /** From the account certainly running dry (or the call's answer, if later) to the caller's BYE, over the dry calls cut. */
  delayMs: { p50: number; p99: number; max: number } | null;
  /** The largest cost of one call past its account's credit (rate x that delay), in currency. */
  worstOverdraft: number;
}

export interface CheckResult {
  violations: Violation[];
  byKind: Record<ViolationKind, number>;
  figures: CheckFigures;
}

/** Faults during which the controller cannot be expected to block (extended by IMPAIRED_TAIL_MS after they end). */
const CONTROLLER_IMPAIRING: readonly FaultKind[] = ['master-freeze-failover', 'master-restart-empty', 'flushall', 'controller-kill', 'master-slow', 'mass-delete', 'cut-controller-kill', 'cut-failover'];
const IMPAIRED_TAIL_MS = 10_000;
/** Faults that lose the whole dataset (blocks included); billing re-provisions it from the recorded states. */
const WIPING: readonly FaultKind[] = ['master-restart-empty', 'flushall'];
/** After a wiping fault, the edges have re-asserted their records within this (the liveness TTL: three renewals). */
const RECORDS_REASSERTED_MS = 15_000;
/** ... and those that re-provision some accounts (which ones is not recorded): balances set afresh, debits lost. */
const RESETTING: readonly FaultKind[] = [...WIPING, 'mass-delete'];
/** Faults after which calls may go unanswered or get the SIP server's own 503. */
const RESTARTING: readonly FaultKind[] = ['sip-server-restart', 'edge-kill', 'edge-restart', 'cut-edge-kill'];
/** Faults in which the master may not answer an edge in time: its channel admissions fall back to its own count (channel_fail_policy), by design. */
const MASTER_UNANSWERING: readonly FaultKind[] = ['master-slow', 'master-freeze-failover', 'master-restart-empty', 'cut-failover'];
/** ... until this long after the fault (the edges' master connections re-established through Sentinel). */
const MASTER_BACK_MS = 5000;
/** Faults in which the audit entries of the last moments may be lost (the master's data, or a master not yet replicated). */
const AUDIT_LOSING: readonly FaultKind[] = [...WIPING, 'master-freeze-failover', 'cut-failover'];
/** 403 phrases that say the edge found the account. */
const FOUND_PHRASES = ['Account Not Enabled', 'Out Of Call Credit', 'Channel Limit Reached'];

export function check(history: SoakHistory): CheckResult {
  const ctx = new Context(history);
  const violations = [
    ...history.calls.flatMap((c) => judgeCall(ctx, c)),
    ...judgeControllerBlocks(ctx),
    ...judgeDryAccounts(ctx),
    ...judgeWrites(ctx),
    ...judgeCuts(ctx),
    ...judgeFinalRecords(ctx),
  ];
  const overshoots = channelOvershoots(ctx);
  violations.push(...overshoots.violations);
  violations.sort((a, b) => a.atMs - b.atMs);
  const byKind = Object.fromEntries(VIOLATION_KINDS.map((k) => [k, 0])) as Record<ViolationKind, number>;
  for (const v of violations) byKind[v.kind]++;
  return {
    violations,
    byKind,
    figures: { ...ctx.figures, calls: history.calls.length, channelLimitOvershoots: overshoots.episodes, overshootsUnseen: overshoots.unseen, overshootsWithoutMaster: overshoots.withoutMaster, overshootsConcurrent: overshoots.episodes - overshoots.unseen - overshoots.withoutMaster, worstOvershoot: overshoots.worst, controllerWrites: history.controllerWrites.length, cuts: ctx.cutFigures },
  };
}

/** What every rule shares: the recorded states, the calls by account, the windows. */
class Context {
  readonly states: RecordedStates;
  readonly p: number;
  readonly callsOf = new Map<string, SoakCall[]>();
  private readonly creditCallsOf = new Map<string, CreditCall[]>();
  readonly restartWindows: Interval[];
  readonly impaired: Interval[];
  private readonly sipServerRestarts: number[];
  /** When balances may have been re-provisioned from the recorded states (data loss, mass delete). */
  readonly resets: Interval[];
  readonly figures = { judged403: 0, judged503: 0, exempted: 0, otherFailures: 0, dryIntervals: 0, dryIntervalsJudged: 0, blocksChecked: 0 };
  readonly cutFigures: CutFigures = { callsCut: 0, dryCalls: 0, dryCallsLost: 0, delayMs: null, worstOverdraft: 0 };

  constructor(readonly h: SoakHistory) {
    this.p = h.settings.propagationMs;
    const window = (f: FaultWindow) => ({ from: f.startMs, to: f.endMs ?? h.endMs });
    this.resets = h.faults.filter((f) => RESETTING.includes(f.kind)).map(window);
    this.states = new RecordedStates(h.accounts, h.operatorActions, h.audit, this.p, h.faults.filter((f) => WIPING.includes(f.kind)).map(window));
    for (const c of h.calls) {
      const list = this.callsOf.get(c.account);
      if (list) list.push(c);
      else this.callsOf.set(c.account, [c]);
    }
    const settle = h.settings.restartSettleMs;
    this.restartWindows = mergeIntervals([
      ...h.faults.filter((f) => RESTARTING.includes(f.kind)).map((f) => ({ from: f.startMs, to: (f.endMs ?? Infinity) + settle })),
      ...h.edgeRestarts.map((r) => ({ from: r.drainFromMs ?? r.killedMs, to: (r.readyMs ?? Infinity) + settle })),
    ]);
    this.impaired = h.faults.filter((f) => CONTROLLER_IMPAIRING.includes(f.kind)).map((f) => ({ from: f.startMs, to: (f.endMs ?? Infinity) + IMPAIRED_TAIL_MS }));
    this.sipServerRestarts = h.faults.filter((f) => f.kind === 'sip-server-restart' && !f.error?.startsWith('skipped')).map((f) => f.startMs);
  }

  /** Relative time for the details: `+812.3 s`. */
  at(ms: number): string {
    if (ms === Infinity) return 'the end';
    if (ms === -Infinity) return 'the start';
    const sec = (ms - this.h.startMs) / 1000;
    return `${sec < 0 ? '-' : '+'}${Math.abs(sec).toFixed(1)} s`;
  }

  /** The kill of the edge that carried this call while it ran, if any: its record outlived the call (an orderly stop counts once its drain is over). */
  killedUnder(c: SoakCall): number | undefined {
    const from = c.connectedMs ?? c.inviteMs;
    const to = c.endedMs ?? this.h.endMs;
    return this.h.edgeRestarts.find((r) => r.edge === c.edge && r.killedMs >= from && r.killedMs <= to)?.killedMs;
  }

  /** The latest the master may still have held this call's record. */
  keptUntil(c: SoakCall): number {
    const killed = this.killedUnder(c);
    return killed === undefined ? (c.endedMs ?? this.h.endMs) : Math.min(this.h.endMs, killed + (this.h.settings.deadEdgeRecordMs ?? Infinity));
  }

  /**
   * The calls as the product can count them, for "it ran dry, it must be blocked": a call that
   * outlived a SIP server restart was ended in the records when the edge lost its connection (its
   * end could no longer be seen), and one whose edge was killed under it is in doubt, then removed
   * with the dead edge's records: its cost stops there.
   */
  visibleCreditCalls(account: string): CreditCall[] {
    const calls = this.callsOf.get(account) ?? [];
    return this.creditCalls(account).map((c) => {
      const call = calls.find((x) => x.callId === c.callId);
      const lost = Math.min(this.sipServerRestartUnder(c.connectedMs, c.endedMs) ?? Infinity, (call && this.killedUnder(call)) ?? Infinity);
      return lost >= c.endedMs ? c : { ...c, endedMs: lost, keptUntilMs: Math.min(c.keptUntilMs, lost) };
    });
  }

  /** A SIP server restart while a call ran: the edge ended its record then, and the controller charged it. */
  private sipServerRestartUnder(from: number, to: number): number | undefined {
    return this.sipServerRestarts.find((t) => t > from && t < to);
  }

  /** When the product lost sight of a call before its caller hung up: its edge killed, or its SIP server restarted, under it (its record is charged and ended from then). */
  lostAt(c: SoakCall): number | undefined {
    const killed = this.killedUnder(c);
    const restart = c.connectedMs === undefined ? undefined : this.sipServerRestartUnder(c.connectedMs, c.endedMs ?? this.h.endMs);
    return killed === undefined ? restart : restart === undefined ? killed : Math.min(killed, restart);
  }

  creditCalls(account: string): CreditCall[] {
    let calls = this.creditCallsOf.get(account);
    if (!calls) {
      calls = creditCalls(this.callsOf.get(account) ?? [], this.h.endMs, (c) => this.keptUntil(c), (c) => this.lostAt(c));
      this.creditCallsOf.set(account, calls);
    }
    return calls;
  }
}

// ---------------------------------------------------------------------------------------------
// Calls: 403s, 503s, no answer.

interface DecisionHeader {
  outcome: string;
  basis: string | undefined;
  /** The cached copy's age, when decided from the stale cache. */
  cacheAgeMs: number | undefined;
}

/** `out-of-credit; basis=cache; age=1800ms; because=loading; edge=edge-a`. */
export function parseDecision(value: string | undefined): DecisionHeader | undefined {
  if (value === undefined) return undefined;
  const [outcome = '', ...parts] = value.split(';').map((s) => s.trim());
  const field = (name: string) => parts.find((p) => p.startsWith(`${name}=`))?.slice(name.length + 1);
  const age = field('age')?.match(/^(\d+(?:\.\d+)?)ms$/);
  return { outcome, basis: field('basis'), cacheAgeMs: age ? Number(age[1]) : undefined };
}

/** How far back the state that decided a call may lie: the propagation time, plus a cached copy's age. */
function lookbackOf(ctx: Context, c: SoakCall): number {
  return ctx.p + (parseDecision(c.decision)?.cacheAgeMs ?? 0);
}

function judgeCall(ctx: Context, c: SoakCall): Violation[] {
  if (c.status === 403) {
    ctx.figures.judged403++;
    return judge403(ctx, c);
  }
  if (c.status === 503) {
    ctx.figures.judged503++;
    return c.decision === undefined ? judgeServer503(ctx, c) : judgeEdge503(ctx, c);
  }
  if (c.status === undefined) return judgeNoAnswer(ctx, c);
  if (c.status >= 300) ctx.figures.otherFailures++;
  return [];
}

function judge403(ctx: Context, c: SoakCall): Violation[] {
  const t = c.inviteMs;
  const lookback = lookbackOf(ctx, c);
  const from = t - lookback;
  const to = c.answerMs ?? t;
  const possible = ctx.states.possibleOver(c.account, from, to);
  const blocks = ctx.states.blocksOver(c.account, from, to);
  const calls = ctx.creditCalls(c.account);
  const found = possible.filter((v) => v.state !== null);
  const dry = (v: StateVersion) => {
    const b = balanceLow(v, calls, to, ctx.p);
    return b !== undefined && b <= 0;
  };
  const seen = `${ctx.at(to)} (INVITE ${ctx.at(t)}, lookback ${Math.round(lookback)} ms)`;
  const record = () => `the record says ${describeVersions(ctx, possible)}${blocks.length > 0 ? `; audit blocks: ${describeBlocks(ctx, blocks)}` : '; no audit block'}`;
  const violation = (kind: ViolationKind, what: string): Violation[] => [{ kind, atMs: to, account: c.account, callId: c.callId, ...(c.edge !== undefined && { edge: c.edge }), detail: `${what} at ${seen}, but ${record()}` }];

  switch (c.phrase) {
    case 'Forbidden':
      // An edge may say "no such account" only if the account may not have existed.
      return possible.every((v) => v.state !== null) ? violation('forbidden-existing', '403 Forbidden') : [];
    case 'Channel Limit Reached':
      return judgeChannelLimit(ctx, c, from, to, possible);
    case 'Account Not Enabled':
      // The edge says it only from a found copy with enabled=false.
      return found.some((v) => !v.state!.enabled) ? [] : violation('false-403', '403 Account Not Enabled');
    case 'Out Of Call Credit':
      // ... only from an enabled copy that is blocked or whose balance is <= 0 (disabled comes first).
      return found.some((v) => v.state!.enabled && (v.state!.operatorBlocked || blocks.length > 0 || dry(v))) ? [] : violation('false-403', '403 Out Of Call Credit');
    default: {
      // Any other 403 to an account that was certainly fine throughout is false.
      const fine = blocks.length === 0 && possible.every((v) => v.state !== null && v.state.enabled && !v.state.operatorBlocked && !dry(v));
      return fine ? violation('false-403', `403 ${c.phrase ?? '(no phrase)'}`) : [];
    }
  }
}

function judgeChannelLimit(ctx: Context, c: SoakCall, from: number, to: number, possible: StateVersion[]): Violation[] {
  const limits = possible.flatMap((v) => (v.state?.maxChannels !== undefined ? [v.state.maxChannels] : []));
  const base = { kind: 'false-channel-limit' as const, atMs: to, account: c.account, callId: c.callId, ...(c.edge !== undefined && { edge: c.edge }) };
  if (limits.length === 0) {
    return [{ ...base, detail: `403 Channel Limit Reached at ${ctx.at(to)}, but the record says ${describeVersions(ctx, possible)}: no channel limit (since ${ctx.at(from)})` }];
  }
  const limit = Math.min(...limits);
  const spans = (ctx.callsOf.get(c.account) ?? []).filter((o) => o !== c && wasRouted(o)).map((o) => countedSpan(o, ctx.h.endMs, ctx.keptUntil(o)));
  const windowFrom = from - ctx.p;
  const most = mostAtOnce(spans, windowFrom, to);
  if (most >= limit) return [];
  return [{ ...base, detail: `403 Channel Limit Reached at ${ctx.at(to)}, but at most ${most} call(s) of the account were in progress from ${ctx.at(windowFrom)} (limit ${limit})` }];
}

/** A 503 an edge decided: wrong if that edge had found the account within max-stale (its stale cache holds it). */
function judgeEdge503(ctx: Context, c: SoakCall): Violation[] {
  const edge = c.edge;
  if (edge === undefined) return [];
  const decisionAt = c.answerMs ?? c.inviteMs;
  const { maxStaleMs } = ctx.h.settings;
  // The found answers this edge gave the account before this INVITE, with the instant its copy dates from.
  const found = (ctx.callsOf.get(c.account) ?? [])
    .filter((f) => f !== c && f.edge === edge && isFoundAnswer(f) && (f.answerMs ?? f.connectedMs ?? Infinity) < c.inviteMs)
    .map((f) => ({ call: f, copyFrom: f.inviteMs - (parseDecision(f.decision)?.cacheAgeMs ?? 0) }))
    .filter((f) => decisionAt - f.copyFrom <= maxStaleMs)
    .sort((a, b) => b.copyFrom - a.copyFrom);
  // The newest copy gives the shortest window: if something excuses it, it excuses the older ones too.
  const newest = found[0];
  if (!newest) return [];
  const since = newest.copyFrom;
  if (ctx.h.edgeRestarts.some((r) => r.edge === edge && r.killedMs >= since && (r.drainFromMs ?? r.killedMs) <= decisionAt)) return [];
  const deleted = ctx.h.operatorActions.some((a) => a.kind === 'delete' && a.account === c.account && a.atMs < decisionAt && a.doneMs + ctx.p > since - ctx.p);
  if (deleted) return [];
  // Deleted on the record by then: a call routed after the delete came from the edge's cache
  // (routed calls carry no decision header, so its copy's age is not known), and a 503 for an
  // account that no longer exists breaks no promise.
  if (ctx.states.possibleOver(c.account, decisionAt - ctx.p, decisionAt).some((v) => v.state === null)) return [];
  const forgot = (ctx.callsOf.get(c.account) ?? []).some((g) => g.edge === edge && g.status === 403 && g.phrase === 'Forbidden' && (g.answerMs ?? g.inviteMs) >= since && g.inviteMs <= decisionAt);
  if (forgot) return [];
  const f = newest.call;
  return [
    {
      kind: 'unexpected-503',
      atMs: decisionAt,
      account: c.account,
      callId: c.callId,
      edge,
      detail: `503 (${c.decision}) from ${edge} at ${ctx.at(decisionAt)}, but ${edge} had found the account for call ${f.callId} (${f.status ?? 'no final'}${f.phrase ? ` ${f.phrase}` : ''}) with a copy from ${ctx.at(since)}: ${Math.round(decisionAt - since)} ms old, within max-stale ${maxStaleMs} ms; no restart of ${edge}, no delete, no 403 Forbidden in between`,
    },
  ];
}

function isFoundAnswer(f: SoakCall): boolean {
  if (f.connectedMs !== undefined) return true;
  if (f.status !== undefined && f.status >= 200 && f.status < 300) return true;
  return f.status === 403 && f.phrase !== undefined && FOUND_PHRASES.includes(f.phrase);
}

/** A restart window that met the call while it waited for its answer. */
function exempt(ctx: Context, c: SoakCall, waitedUntil: number): Interval | undefined {
  return meeting(ctx.restartWindows, c.inviteMs, waitedUntil);
}

/** A 503 no edge decided (the SIP server's own, or a failed proxying): only around a restart. */
function judgeServer503(ctx: Context, c: SoakCall): Violation[] {
  if (exempt(ctx, c, c.answerMs ?? c.inviteMs)) {
    ctx.figures.exempted++;
    return [];
  }
  return [{ kind: 'sip-server-503', atMs: c.answerMs ?? c.inviteMs, account: c.account, callId: c.callId, detail: `503 ${c.phrase ?? ''} with no X-Credit-Decision at ${ctx.at(c.answerMs ?? c.inviteMs)} (INVITE ${ctx.at(c.inviteMs)}), outside every SIP server or edge restart window` }];
}

function judgeNoAnswer(ctx: Context, c: SoakCall): Violation[] {
  // Its answer was still due for a while after the INVITE (or its ringing): a restart that began
  // then may have swallowed it.
  const settle = ctx.h.settings.restartSettleMs;
  if (exempt(ctx, c, (c.answerMs ?? c.inviteMs) + settle) || c.inviteMs >= ctx.h.endMs - settle) {
    ctx.figures.exempted++;
    return [];
  }
  return [{ kind: 'no-answer', atMs: c.inviteMs, account: c.account, callId: c.callId, detail: `no final answer to the INVITE sent at ${ctx.at(c.inviteMs)}${c.answerMs !== undefined ? ` (first answer ${ctx.at(c.answerMs)})` : ''}, outside every SIP server or edge restart window` }];
}

// ---------------------------------------------------------------------------------------------
// The controller: blocks of funded accounts, dry accounts left unblocked, writes off the master.

function judgeControllerBlocks(ctx: Context): Violation[] {
  const { roundMs } = ctx.h.settings;
  const slack = roundMs + ctx.p;
  const out: Violation[] = [];
  for (const b of ctx.h.audit) {
    if (b.by !== 'controller' || b.action !== 'block') continue;
    ctx.figures.blocksChecked++;
    const calls = ctx.creditCalls(b.account);
    const { projected, ratePerMin } = lowBound(ctx.states.versions(b.account), calls, b.atMs, slack, ctx.p);
    const base = { kind: 'funded-blocked' as const, atMs: b.atMs, account: b.account };
    if (projected === undefined) {
      out.push({ ...base, detail: `controller block at ${ctx.at(b.atMs)}, but the record says ${describeVersions(ctx, ctx.states.possibleOver(b.account, b.atMs - slack, b.atMs))}: no balance to run dry` });
      continue;
    }
    const running = calls.filter((c) => c.connectedMs <= b.atMs && b.atMs <= c.keptUntilMs + ctx.p).length;
    const allowance = (ratePerMin * running * slack) / 60_000;
    if (projected > allowance) {
      out.push({
        ...base,
        detail: `controller block at ${ctx.at(b.atMs)}, but the projected balance was at least ${round(projected)} (${running} call(s) in progress at ${ratePerMin}/min; timing slack ${slack} ms allows ${round(allowance)})`,
      });
    }
  }
  const wrongAtOnce = new Set(out.map((v) => `${v.account}@${v.atMs}`));
  const accounts = new Set(ctx.h.audit.filter((b) => b.by === 'controller').map((b) => b.account));
  for (const account of accounts) {
    for (const period of ctx.states.blockPeriods(account)) {
      if (period.by !== 'controller' || wrongAtOnce.has(`${account}@${period.atMs}`)) continue;
      const stuck = judgeLift(ctx, account, period);
      if (stuck) out.push(stuck);
    }
  }
  return out;
}

/**
 * The controller lifts its own block when the cause clears (the incident's rule 4): a controller
 * block still in effect a bound of controller-healthy time after the account became certainly
 * funded (a top-up) is a funded account blocked. Not judged when the operator blocked it too.
 */
function judgeLift(ctx: Context, account: string, period: { atMs: number; liftedMs: number }): Violation | undefined {
  const { roundMs, blockBoundMs } = ctx.h.settings;
  const slack = roundMs + ctx.p;
  // Certainly in effect only until a data loss or mass delete that may have taken it.
  const end = Math.min(period.liftedMs, ctx.h.endMs, ...ctx.resets.filter((r) => r.from >= period.atMs).map((r) => r.from));
  const versions = ctx.states.versions(account);
  const funded = fundedIntervals(versions, ctx.creditCalls(account), period.atMs, end, slack, ctx.p);
  for (const f of funded) {
    const impaired = mergeIntervals([...ctx.impaired, ...doubtWindows(ctx, account)]);
    const deadline = afterHealthyTime(impaired, f.from, blockBoundMs);
    if (!(f.to > deadline && period.liftedMs > deadline + ctx.p)) continue;
    const operator = ctx.states.blockPeriods(account).some((b) => b.by === 'operator' && b.atMs <= deadline && b.liftedMs >= period.atMs) || ctx.states.possibleOver(account, period.atMs, deadline).some((v) => v.state?.operatorBlocked);
    if (operator) return undefined;
    return {
      kind: 'funded-blocked',
      atMs: deadline,
      account,
      detail: `controller block of ${ctx.at(period.atMs)} still in effect at ${ctx.at(deadline)}, but the account was funded from ${ctx.at(f.from)} (the record says ${describeVersions(ctx, ctx.states.possibleOver(account, f.from, f.from))}; bound ${blockBoundMs} ms of controller-healthy time)`,
    };
  }
  return undefined;
}

function judgeDryAccounts(ctx: Context): Violation[] {
  const { blockBoundMs } = ctx.h.settings;
  const out: Violation[] = [];
  const ids = new Set([...ctx.h.accounts.map((a) => a.id), ...ctx.h.operatorActions.flatMap((a) => (a.account === undefined ? [] : [a.account]))]);
  for (const account of ids) {
    const versions = ctx.states.versions(account);
    // Running dry is the cost of calls in progress overtaking the credit: with no call in progress
    // an account at or below zero needs no block (the edge refuses it by its balance).
    const calls = ctx.visibleCreditCalls(account);
    const inProgress = calls.map((c) => ({ from: c.connectedMs, to: c.keptUntilMs }));
    const dryIntervals = exhaustedIntervals(versions, calls, ctx.h.startMs, ctx.h.endMs, ctx.resets).flatMap((d) => intersectIntervals(d, inProgress));
    if (dryIntervals.length === 0) continue;
    const impaired = mergeIntervals([...ctx.impaired, ...doubtWindows(ctx, account)]);
    // Any block that may have been in effect: audit blocks (the master's own instants: no slack
    // against the deadline) and operator-blocked states (possible from their command's start).
    const blocked = [
      ...ctx.states.blockPeriods(account).map((b) => ({ from: b.atMs, to: b.liftedMs })),
      ...versions.filter((v) => v.state?.operatorBlocked).map((v) => ({ from: v.from, to: v.until })),
    ];
    for (const dry of dryIntervals) {
      ctx.figures.dryIntervals++;
      if (dry.to > afterHealthyTime(impaired, dry.from, blockBoundMs)) ctx.figures.dryIntervalsJudged++;
      // Each stretch of the dry interval with certainly no block must be closed by a block within the bound.
      for (const open of subtractIntervals(dry, blocked)) {
        const deadline = afterHealthyTime(impaired, open.from, blockBoundMs);
        // Not judged: topped up, blocked, or the run ended, before the deadline.
        if (!(open.to > deadline)) continue;
        out.push({
          kind: 'dry-not-blocked',
          atMs: deadline,
          account,
          detail: `dry from ${ctx.at(dry.from)} (projected <= 0 until ${ctx.at(dry.to)}; the record says ${describeVersions(ctx, ctx.states.possibleOver(account, dry.from, dry.from))}), with no block from ${ctx.at(open.from)} to ${ctx.at(open.to)}: not blocked by ${ctx.at(deadline)} (bound ${blockBoundMs} ms of controller-healthy time)`,
        });
      }
    }
  }
  return out;
}

/**
 * While a killed edge's calls are in doubt the controller holds their accounts as unknown (no
 * block) until their records are removed: that time does not count against the bound.
 */
function doubtWindows(ctx: Context, account: string): Interval[] {
  return (ctx.callsOf.get(account) ?? []).flatMap((c) => {
    const killed = c.connectedMs !== undefined ? ctx.killedUnder(c) : undefined;
    return killed === undefined ? [] : [{ from: killed, to: ctx.keptUntil(c) === ctx.h.endMs ? Infinity : ctx.keptUntil(c) }];
  });
}

/**
 * The fencing rule (the incident's rule 3), no slack. A write lands on the master of its instant:
 * the node promoted last, or the node a majority of the Sentinels still name. Between a promotion
 * and the Sentinels agreeing on it, the old master still says ROLE master and is the one Sentinel
 * names: no client can fence on anything else, and what it writes there is lost in the resync
 * (the controller counts a batch done only once a replica acknowledged it). After that moment, a
 * write on the old master is the incident's: a writer left behind.
 */
function judgeWrites(ctx: Context): Violation[] {
  const promoted = sortedEpochs(ctx.h.masters);
  const named = sortedEpochs(ctx.h.sentinelMasters ?? []);
  if (promoted.length === 0) {
    if (ctx.h.controllerWrites.length > 0) throw new Error('history: controller writes recorded but no master epoch to judge them by');
    return [];
  }
  const out: Violation[] = [];
  for (const w of ctx.h.controllerWrites) {
    const epoch = epochAt(promoted, w.atMs)!;
    if (w.node === epoch.address || w.node === epochAt(named, w.atMs)?.address) continue;
    out.push({ kind: 'write-to-non-master', atMs: w.atMs, detail: `${w.client} wrote ${w.command} on ${w.node} at ${ctx.at(w.atMs)}, but ${epoch.address} was the master from ${ctx.at(epoch.fromMs)}` });
  }
  return out;
}

function sortedEpochs(epochs: MasterEpoch[]): MasterEpoch[] {
  return [...epochs].sort((a, b) => a.fromMs - b.fromMs);
}

/** The epoch in effect at `ms` (a time before the first is judged against the first). */
function epochAt(epochs: MasterEpoch[], ms: number): MasterEpoch | undefined {
  let epoch = epochs[0];
  for (const m of epochs) if (m.fromMs <= ms) epoch = m;
  return epoch;
}

// ---------------------------------------------------------------------------------------------
// Cuts: no funded call ended, none ended twice, every call of a dry account ended within the bound.

function judgeCuts(ctx: Context): Violation[] {
  const out: Violation[] = [];
  for (const c of ctx.h.calls) {
    if (c.endedBy !== 'network') continue;
    ctx.cutFigures.callsCut++;
    const cut = judgeCut(ctx, c);
    if (cut) out.push(cut);
    if ((c.byesReceived ?? 1) > 1) out.push({ kind: 'cut-twice', atMs: c.endedMs!, account: c.account, callId: c.callId, detail: `${c.byesReceived} BYEs (distinct branches) reached the caller of ${c.callId}, the first at ${ctx.at(c.endedMs!)}` });
  }
  if (ctx.h.settings.cutBoundMs !== undefined) out.push(...judgeDryCalls(ctx, ctx.h.settings.cutBoundMs));
  return out;
}

/** A cut judged as a block is (funded-blocked), at the instant the controller decided it. */
function judgeCut(ctx: Context, c: SoakCall): Violation | undefined {
  const endedMs = c.endedMs!;
  const base = { kind: 'funded-cut' as const, atMs: endedMs, account: c.account, callId: c.callId, ...(c.edge !== undefined && { edge: c.edge }) };
  const orders = (ctx.h.cuts ?? []).filter((k) => k.callId === c.callId && k.atMs <= endedMs + ctx.p);
  const order = orders[orders.length - 1];
  if (!order) {
    const lost = ctx.h.faults.some((f) => AUDIT_LOSING.includes(f.kind) && meeting([{ from: f.startMs, to: f.endMs ?? ctx.h.endMs }], endedMs - (ctx.h.settings.cutBoundMs ?? 0) - ctx.p, endedMs));
    return lost ? undefined : { ...base, detail: `the network ended ${c.callId} at ${ctx.at(endedMs)} (Reason: ${c.endReason ?? 'none'}), but the audit stream has no cut of it` };
  }
  if (order.account !== c.account) return { ...base, detail: `the network ended ${c.callId} of ${c.account} at ${ctx.at(endedMs)} on a cut of ${order.account} (${ctx.at(order.atMs)}): another account's evidence` };
  const { roundMs } = ctx.h.settings;
  const slack = roundMs + ctx.p;
  const calls = ctx.creditCalls(c.account);
  const { projected, ratePerMin } = lowBound(ctx.states.versions(c.account), calls, order.atMs, slack, ctx.p);
  if (projected === undefined) return { ...base, detail: `cut of ${c.callId} at ${ctx.at(order.atMs)}, but the record says ${describeVersions(ctx, ctx.states.possibleOver(c.account, order.atMs - slack, order.atMs))}: no balance to run dry` };
  const running = calls.filter((x) => x.connectedMs <= order.atMs && order.atMs <= x.keptUntilMs + ctx.p).length;
  const allowance = (ratePerMin * running * slack) / 60_000;
  if (projected <= allowance) return undefined;
  return { ...base, detail: `cut of ${c.callId} at ${ctx.at(order.atMs)} (ended ${ctx.at(endedMs)}), but the projected balance was at least ${round(projected)} (${running} call(s) in progress at ${ratePerMin}/min; timing slack ${slack} ms allows ${round(allowance)})` };
}

function judgeDryCalls(ctx: Context, boundMs: number): Violation[] {
  const out: Violation[] = [];
  const delays: number[] = [];
  for (const [account, calls] of ctx.callsOf) {
    const versions = ctx.states.versions(account);
    const visible = ctx.visibleCreditCalls(account);
    const dry = exhaustedIntervals(versions, visible, ctx.h.startMs, ctx.h.endMs, ctx.resets);
    if (dry.length === 0) continue;
    const impaired = mergeIntervals([...ctx.impaired, ...doubtWindows(ctx, account)]);
    for (const c of calls) {
      if (c.connectedMs === undefined) continue;
      const endedMs = c.endedMs ?? ctx.h.endMs;
      const d = dry.find((x) => x.to > c.connectedMs! && x.from < endedMs);
      if (!d) continue;
      const from = Math.max(d.from, c.connectedMs);
      if ((visible.find((v) => v.callId === c.callId)?.endedMs ?? -Infinity) < endedMs) {
        ctx.cutFigures.dryCallsLost++;
        continue;
      }
      ctx.cutFigures.dryCalls++;
      const deadline = afterHealthyTime(impaired, from, boundMs);
      if (endedMs > deadline && d.to > deadline) {
        out.push({
          kind: 'dry-not-cut',
          atMs: deadline,
          account,
          callId: c.callId,
          ...(c.edge !== undefined && { edge: c.edge }),
          detail: `dry from ${ctx.at(from)} (the record says ${describeVersions(ctx, ctx.states.possibleOver(account, from, from))}), but call ${c.callId} ran on ${c.endedMs === undefined ? 'to the end' : `until ${ctx.at(endedMs)}`}: not ended by ${ctx.at(deadline)} (bound ${boundMs} ms of controller-healthy time)`,
        });
      }
      if (c.endedBy === 'network') {
        delays.push(endedMs - from);
        const rate = Math.max(0, ...ctx.states.possibleOver(account, from, endedMs).map((v) => v.state?.ratePerMin ?? 0));
        ctx.cutFigures.worstOverdraft = Math.max(ctx.cutFigures.worstOverdraft, round((rate * (endedMs - from)) / 60_000));
      }
    }
  }
  if (delays.length > 0) {
    delays.sort((a, b) => a - b);
    const q = (p: number) => Math.round(delays[Math.min(delays.length - 1, Math.ceil(p * delays.length) - 1)]!);
    ctx.cutFigures.delayMs = { p50: q(0.5), p99: q(0.99), max: Math.round(delays[delays.length - 1]!) };
  }
  return out;
}

function judgeFinalRecords(ctx: Context): Violation[] {
  const { leaked, ghosts } = ctx.h.finalRecords;
  return [
    ...leaked.map((l) => ({ kind: 'leaked-call-record' as const, atMs: ctx.h.endMs, account: l.account, callId: l.callId, detail: `call record ${l.callId} of ${l.account} still on the master at the end` })),
    ...ghosts.map((g) => ({ kind: 'ghost-call-record' as const, atMs: ctx.h.endMs, account: g.account, detail: `totals of ${g.account} disagree with its records at the end: ${g.detail}` })),
  ];
}

// ---------------------------------------------------------------------------------------------
// Figures and words.

function channelOvershoots(ctx: Context): { episodes: number; unseen: number; withoutMaster: number; worst: number; violations: Violation[] } {
  let episodes = 0;
  let unseen = 0;
  let withoutMaster = 0;
  const masterUnanswering = ctx.h.faults.filter((f) => MASTER_UNANSWERING.includes(f.kind)).map((f) => ({ from: f.startMs, to: (f.endMs ?? ctx.h.endMs) + MASTER_BACK_MS }));
  let worst = 0;
  const violations: Violation[] = [];
  for (const [account, calls] of ctx.callsOf) {
    const limits = ctx.states.versions(account).flatMap((v) => (v.state?.maxChannels !== undefined ? [v.state.maxChannels] : []));
    if (limits.length === 0) continue;
    const limit = Math.max(...limits);
    const connected = calls.filter((c) => c.connectedMs !== undefined).map((c) => ({ from: c.connectedMs!, to: c.endedMs ?? ctx.h.endMs, call: c }));
    for (const e of overLimitEpisodes(connected, limit)) {
      episodes++;
      worst = Math.max(worst, e.most - limit);
      // A call the product had stopped counting by the episode's start: its absence let another in.
      // A lost dataset takes the records with it until each edge re-asserts its own (at its next
      // liveness renewal after the master is back): meanwhile the other edges cannot count them.
      const running = connected.filter((s) => s.from <= e.from && s.to > e.from);
      const wipedUnder = (s: { from: number }) => ctx.h.faults.some((f) => WIPING.includes(f.kind) && s.from < f.startMs && e.from >= f.startMs && e.from <= (f.endMs ?? ctx.h.endMs) + RECORDS_REASSERTED_MS);
      if (running.some((s) => (ctx.lostAt(s.call) ?? Infinity) <= e.from || wipedUnder(s))) {
        unseen++;
        continue;
      }
      if (running.some((s) => meeting(masterUnanswering, s.call.inviteMs))) {
        withoutMaster++;
        continue;
      }
      const last = running.reduce((a, b) => (b.from > a.from ? b : a));
      const edges = [...new Set(running.map((s) => s.call.edge ?? '?'))].join(', ');
      violations.push({
        kind: 'channel-overshoot',
        atMs: e.from,
        account,
        callId: last.call.callId,
        ...(last.call.edge !== undefined && { edge: last.call.edge }),
        detail: `${e.most} calls connected at once from ${ctx.at(e.from)} to ${ctx.at(e.to)} (limit ${limit}), admitted by ${edges}; none lost to the product`,
      });
    }
  }
  return { episodes, unseen, withoutMaster, worst, violations };
}

const round = (n: number) => Math.round(n * 1000) / 1000;

export function describeState(s: RecordedAccount | null): string {
  if (s === null) return 'absent';
  const parts = [s.enabled ? 'enabled' : 'disabled', s.balance === undefined ? 'no balance' : `balance ${s.balance}`];
  if (s.ratePerMin !== undefined) parts.push(`rate ${s.ratePerMin}/min`);
  parts.push(s.operatorBlocked ? 'operator-blocked' : 'not operator-blocked');
  if (s.maxChannels !== undefined) parts.push(`max ${s.maxChannels} channel(s)`);
  return parts.join(', ');
}

function describeVersions(ctx: Context, versions: readonly StateVersion[]): string {
  if (versions.length === 0) return 'nothing';
  return versions
    .map((v) => `${describeState(v.state)} (${v.uncertain ? 'possibly, by a failed command, ' : ''}from ${ctx.at(v.from)}${v.until !== Infinity ? ` until ${ctx.at(v.until)}` : ''})`)
    .join(' or ');
}

function describeBlocks(ctx: Context, blocks: readonly { by: string; atMs: number; liftedMs: number }[]): string {
  return blocks.map((b) => `by ${b.by} at ${ctx.at(b.atMs)}${b.liftedMs !== Infinity ? ` lifted ${ctx.at(b.liftedMs)}` : ''}`).join(', ');
}
