import * as hdr from 'hdr-histogram-js';
import type { AccountClass } from './accounts.js';
import { pddMs, type CallTrace } from './trace.js';

/**
 * From per-call traces to figures: each call's outcome judged against what its account should
 * get, and PDD percentiles from an HDR histogram (µs values, 3 significant digits: 0.1% error).
 */

export type Outcome = 'routed' | '403-not-enabled' | '403-no-credit' | '403-forbidden' | '403-other' | '503' | 'other' | 'no-answer';

export interface JudgedCall {
  /** µs since the epoch of the INVITE (or of the answer when the INVITE was not traced). */
  atUs: number;
  account: string;
  accountClass: AccountClass;
  pddMs: number | undefined;
  outcome: Outcome;
  status: number | undefined;
  /** The outcome is what the account should get, in this arm's mode. */
  expected: boolean;
  /** A 403 for an account that has credit. */
  false403: boolean;
  /** A 503 for an account whose state the edge's cache held (an earlier answer proved it found). */
  unexpected503: boolean;
  /** Answered from the edge's cached copy (X-Credit-Decision basis=cache; rejections only). */
  fromCache: boolean;
  /** The network sent the first BYE: the product ended the call (a cut), not the caller. */
  endedByNetwork: boolean;
}

export function outcomeOf(call: CallTrace): Outcome {
  const s = call.finalStatus ?? call.answerStatus;
  if (s === undefined) return 'no-answer';
  if (s < 300) return 'routed';
  if (s === 403) {
    const phrase = (call.finalReason ?? '').toLowerCase();
    if (phrase.includes('not enabled')) return '403-not-enabled';
    if (phrase.includes('credit')) return '403-no-credit';
    if (phrase === 'forbidden') return '403-forbidden';
    return '403-other';
  }
  if (s === 503) return '503';
  return 'other';
}

/** What each account class must get: with gating off, every call is routed. */
export function expectedOutcome(cls: AccountClass, gated: boolean): Outcome {
  if (!gated) return 'routed';
  switch (cls) {
    case 'ok':
      return 'routed';
    case 'disabled':
      return '403-not-enabled';
    case 'no-credit':
      return '403-no-credit';
    case 'unknown':
      return '403-forbidden';
  }
}

/**
 * Judges the calls of one arm, in INVITE order. The cache-held test follows the edge's cache rule
 * (every *found* is remembered; the runs are far shorter than max-stale): an account is held once
 * an earlier call of this arm was answered from a found state (routed, or a 403 naming the account's
 * own state). Each arm starts a fresh edge, so history does not carry across arms.
 */
export function judge(calls: CallTrace[], classOf: Map<string, AccountClass>, gated: boolean): JudgedCall[] {
  const held = new Map<string, number>();
  const out: JudgedCall[] = [];
  for (const call of calls) {
    const account = call.account ?? '?';
    const accountClass = classOf.get(account) ?? 'unknown';
    const outcome = outcomeOf(call);
    const atUs = call.inviteUs ?? call.answerUs ?? 0;
    const heldSince = held.get(account);
    const j: JudgedCall = {
      atUs,
      account,
      accountClass,
      pddMs: pddMs(call),
      outcome,
      status: call.finalStatus ?? call.answerStatus,
      expected: outcome === expectedOutcome(accountClass, gated),
      false403: gated && accountClass === 'ok' && outcome.startsWith('403'),
      unexpected503: outcome === '503' && heldSince !== undefined && heldSince < atUs,
      fromCache: (call.decision ?? '').includes('basis=cache'),
      endedByNetwork: call.byeReceived,
    };
    out.push(j);
    const foundAnswer = outcome === 'routed' || outcome === '403-not-enabled' || outcome === '403-no-credit';
    if (foundAnswer && call.answerUs !== undefined && !held.has(account)) held.set(account, call.answerUs);
  }
  return out;
}

export interface PddFigures {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** An HDR histogram of PDD in µs (1 µs .. 60 s). */
export function histogramOf(pdds: Iterable<number>): hdr.Histogram {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  for (const ms of pdds) h.recordValue(Math.max(1, Math.round(ms * 1000)));
  return h;
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;

export function figuresOf(pdds: number[]): PddFigures | undefined {
  if (pdds.length === 0) return undefined;
  const h = histogramOf(pdds);
  // A percentile is reported as the top of its HDR bucket: never above the max seen.
  const max = r3(h.maxValue / 1000);
  const ms = (p: number) => Math.min(max, r3(h.getValueAtPercentile(p) / 1000));
  const f = { count: h.totalCount, p50: ms(50), p90: ms(90), p99: ms(99), p999: ms(99.9), max, mean: r3(h.mean / 1000) };
  h.destroy();
  return f;
}

/** CDF points (PDD ms at percentile) for the report, read off the histogram. */
export function cdfOf(pdds: number[]): { pct: number; ms: number }[] {
  if (pdds.length === 0) return [];
  const h = histogramOf(pdds);
  const levels = [0, 1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 85, 90, 92.5, 95, 97, 98, 99, 99.5, 99.7, 99.8, 99.9, 99.95, 99.99, 100];
  const max = r3(h.maxValue / 1000);
  const out = levels.map((pct) => ({ pct, ms: Math.min(max, r3(h.getValueAtPercentile(pct) / 1000)) }));
  h.destroy();
  return out;
}

export function pddsOf(calls: JudgedCall[]): number[] {
  const out: number[] = [];
  for (const c of calls) if (c.pddMs !== undefined) out.push(c.pddMs);
  return out;
}

export interface CallCounts {
  calls: number;
  failed_calls: number;
  no_answer: number;
  answered_503: number;
  false_403: number;
  unexpected_503: number;
  from_cache: number;
  /** Calls the network ended (the product's cuts): every bench account is funded, so the target is 0. */
  ended_by_network: number;
  outcomes: Partial<Record<Outcome, number>>;
}

export function countsOf(calls: JudgedCall[]): CallCounts {
  const outcomes: Partial<Record<Outcome, number>> = {};
  let failed = 0, f403 = 0, u503 = 0, cache = 0, noAnswer = 0, s503 = 0, byNetwork = 0;
  for (const c of calls) {
    outcomes[c.outcome] = (outcomes[c.outcome] ?? 0) + 1;
    if (!c.expected) failed++;
    if (c.false403) f403++;
    if (c.unexpected503) u503++;
    if (c.fromCache) cache++;
    if (c.outcome === 'no-answer') noAnswer++;
    if (c.outcome === '503') s503++;
    if (c.endedByNetwork) byNetwork++;
  }
  return { calls: calls.length, failed_calls: failed, no_answer: noAnswer, answered_503: s503, false_403: f403, unexpected_503: u503, from_cache: cache, ended_by_network: byNetwork, outcomes };
}

export function ratio(a: number | undefined, b: number | undefined): number | null {
  return a !== undefined && b !== undefined && b > 0 ? Math.round((a / b) * 1000) / 1000 : null;
}
