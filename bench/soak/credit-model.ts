import type { SoakCall } from './history.js';
import type { Interval } from './intervals.js';
import type { StateVersion } from './recorded-state.js';

/**
 * The controller's rule (src/control/projection.ts), recomputed from the outside (pure):
 *
 *   projected(x) = balance(x) - sum over calls in progress at x of rate x minutes since answer
 *
 * where the balance is the one the operator last set *minus the cost of every call that ended
 * since* (the edge's call-end step debits it, src/calls/records.ts): a call's cost sits in its
 * record while it runs and in the balance after, so from a set onwards
 *
 *   projected(x) = set balance - sum over the calls that ended after the set, or run, of rate x (min(x, end) - answer) / 60000.
 *
 * The checker cannot know the instant of a set inside its command, nor which of two overlapping
 * states was in effect, so it computes two bounds over every possible state (recorded-state.ts):
 * - `high`: the most the balance can be (for "it ran dry": only when even this is <= 0);
 * - `low`: the least it can be (for "it was funded": only when even this is > 0).
 * Calls use SIPp's times (answer = 200 OK received, end = BYE); each state's own rate prices them.
 */

export interface CreditCall {
  callId: string;
  connectedMs: number;
  /** When its cost stopped growing as SIPp saw it (BYE), or the end of the run. */
  endedMs: number;
  /** The latest its record may have been counted by the controller (> endedMs when its edge was killed under it). */
  keptUntilMs: number;
  /**
   * Its edge was killed, or its SIP server restarted, under it at this instant: from then its
   * record may be charged to the balance before the call ends (the restarted edge charges its
   * predecessor's records, the controller a dead edge's; an edge that lost its SIP server ends
   * the records of the calls it can no longer see).
   */
  chargedFromMs?: number;
}

/** The account's connected calls, in the model's terms. */
export function creditCalls(calls: readonly SoakCall[], endMs: number, keptUntil: (c: SoakCall) => number, chargedEarly: (c: SoakCall) => number | undefined = () => undefined): CreditCall[] {
  return calls
    .filter((c) => c.connectedMs !== undefined)
    .map((c) => {
      const endedMs = Math.max(c.connectedMs!, c.endedMs ?? endMs);
      const call: CreditCall = { callId: c.callId, connectedMs: c.connectedMs!, endedMs, keptUntilMs: Math.max(endedMs, keptUntil(c)) };
      const early = chargedEarly(c);
      if (early !== undefined && early < endedMs) call.chargedFromMs = early;
      return call;
    });
}

const isLimited = (v: StateVersion) => v.state !== null && v.state.balance !== undefined;

/** Cost at x of the calls a version's set balance pays for (they ended after `since`, or still run). */
function spent(calls: readonly CreditCall[], rate: number, since: number, x: number, end: (c: CreditCall) => number): number {
  let sum = 0;
  for (const c of calls) {
    if (c.connectedMs > x || end(c) <= since) continue;
    sum += (rate * (Math.min(x, end(c)) - c.connectedMs)) / 60_000;
  }
  return sum;
}

export interface LowBound {
  /** The least the controller can have projected at x; undefined: no possible state has a balance (nothing to block). */
  projected: number | undefined;
  /** The highest rate among the possible states (prices the timing slack). */
  ratePerMin: number;
}

/**
 * The least projected balance at x over the states possible in [x - lookback, x]. Calls whose
 * edge died under them are charged until their record may have gone, and every end after the
 * start of the command that set the balance (minus the propagation time) counts against it.
 */
export function lowBound(versions: readonly StateVersion[], calls: readonly CreditCall[], x: number, lookbackMs: number, propagationMs: number): LowBound {
  const possible = versions.filter((v) => v.from <= x && v.until > x - lookbackMs && isLimited(v));
  if (possible.length === 0) return { projected: undefined, ratePerMin: 0 };
  let projected = Infinity;
  let ratePerMin = 0;
  for (const v of possible) {
    const rate = v.state!.ratePerMin ?? 0;
    ratePerMin = Math.max(ratePerMin, rate);
    projected = Math.min(projected, v.state!.balance! - spent(calls, rate, v.balanceSet.from - propagationMs, x, (c) => c.keptUntilMs));
  }
  return { projected, ratePerMin };
}

/**
 * The intervals where even the highest possible projected balance is <= 0: the account certainly
 * ran dry. Computed exactly: between two consecutive events (a call answered or ended, a state
 * becoming possible or impossible) each state's projection is linear and non-increasing in x, so
 * the set where all of them are <= 0 is a tail of the segment, found by solving for the zero.
 * A state with no balance, a deleted account, or calls running with no rate: never dry.
 *
 * `resets`: windows in which the dataset was lost and re-provisioned from the recorded states
 * (the debits of the calls before are gone with it): never dry inside one, and after it only the
 * calls that ended after it are charged.
 */
export function exhaustedIntervals(versions: readonly StateVersion[], calls: readonly CreditCall[], startMs: number, endMs: number, resets: readonly Interval[] = []): Interval[] {
  if (!versions.some(isLimited)) return [];
  const cuts = new Set<number>([startMs, endMs]);
  const add = (t: number) => {
    if (t > startMs && t < endMs) cuts.add(t);
  };
  for (const v of versions) [v.from, v.until].forEach(add);
  for (const c of calls) [c.connectedMs, c.endedMs].forEach(add);
  for (const r of resets) [r.from, r.to].forEach(add);
  const points = [...cuts].sort((a, b) => a - b);

  const dry: Interval[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const s = points[i]!;
    const e = points[i + 1]!;
    if (resets.some((r) => r.from <= s && s < r.to)) continue;
    const restored = Math.max(-Infinity, ...resets.filter((r) => r.to <= s).map((r) => r.to));
    const possible = versions.filter((v) => v.from <= s && v.until > s);
    if (possible.length === 0 || !possible.every(isLimited)) continue;
    const running = calls.filter((c) => c.connectedMs <= s && c.endedMs > s);
    let from = s;
    for (const v of possible) {
      const rate = v.state!.ratePerMin;
      if (rate === undefined && running.length > 0) {
        from = Infinity; // the controller cannot price these calls: unknown, never dry
        break;
      }
      // Only the ends after the balance was certainly set count against it.
      const since = Math.max(v.balanceSet.to, restored);
      const value = v.state!.balance! - spent(calls, rate ?? 0, since, s, (c) => c.endedMs);
      const slope = ((rate ?? 0) * running.filter((c) => c.endedMs > since).length) / 60_000;
      if (value <= 0) continue;
      from = Math.max(from, slope > 0 ? s + value / slope : Infinity);
    }
    if (from < e) dry.push({ from, to: e });
  }
  // Join the segments' tails into maximal intervals.
  const joined: Interval[] = [];
  for (const d of dry) {
    const last = joined[joined.length - 1];
    if (last && last.to === d.from) last.to = d.to;
    else joined.push({ ...d });
  }
  return joined;
}

/**
 * The least the `balance` field may have held by `to` in this state: its set balance minus the
 * calls ended by then (debited at their end; a call whose edge died under it is debited when its
 * record goes, charged here up to `to`). undefined: the state has no balance. For "Out Of Call
 * Credit", which the edge answers on the balance field alone (<= 0), not on the projection.
 */
export function balanceLow(v: StateVersion, calls: readonly CreditCall[], to: number, propagationMs: number): number | undefined {
  if (!isLimited(v)) return undefined;
  const rate = v.state!.ratePerMin ?? 0;
  let sum = 0;
  for (const c of calls) {
    const charged = c.endedMs <= to || (c.chargedFromMs !== undefined && c.chargedFromMs <= to);
    if (!charged || c.keptUntilMs <= v.balanceSet.from - propagationMs) continue;
    sum += (rate * (Math.min(to, c.keptUntilMs) - c.connectedMs)) / 60_000;
  }
  return v.state!.balance! - sum;
}

/**
 * The intervals where even the lowest possible projected balance (states possible in the lookback)
 * is above the timing allowance, `ratePerMin x calls in progress x slackMs`: the account was
 * certainly funded, as the controller's rule sees it. Exact, like exhaustedIntervals: between two
 * events every state's projection is linear and non-increasing, so the funded set is a head of
 * the segment. A state with no balance, a deleted account, or calls with no rate: never funded
 * (the controller holds it as unknown and lifts nothing).
 */
export function fundedIntervals(versions: readonly StateVersion[], calls: readonly CreditCall[], from: number, to: number, slackMs: number, propagationMs: number): Interval[] {
  const cuts = new Set<number>([from, to]);
  const add = (t: number) => {
    if (t > from && t < to) cuts.add(t);
  };
  for (const v of versions) [v.from, v.until + slackMs].forEach(add);
  for (const c of calls) [c.connectedMs, c.keptUntilMs, c.keptUntilMs + propagationMs].forEach(add);
  const points = [...cuts].sort((a, b) => a - b);

  const funded: Interval[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const s = points[i]!;
    const e = points[i + 1]!;
    const possible = versions.filter((v) => v.from <= s && v.until + slackMs > s);
    if (possible.length === 0 || !possible.every(isLimited)) continue;
    const running = calls.filter((c) => c.connectedMs <= s && c.keptUntilMs > s);
    const counted = calls.filter((c) => c.connectedMs <= s && s <= c.keptUntilMs + propagationMs).length;
    const maxRate = Math.max(...possible.map((v) => v.state!.ratePerMin ?? 0));
    const allowance = (maxRate * counted * slackMs) / 60_000;
    let until = e;
    for (const v of possible) {
      const rate = v.state!.ratePerMin;
      if (rate === undefined && running.length > 0) {
        until = s;
        break;
      }
      const since = v.balanceSet.from - propagationMs;
      const value = v.state!.balance! - spent(calls, rate ?? 0, since, s, (c) => c.keptUntilMs) - allowance;
      const slope = ((rate ?? 0) * running.filter((c) => c.keptUntilMs > since).length) / 60_000;
      until = Math.min(until, value <= 0 ? s : slope > 0 ? s + value / slope : Infinity);
    }
    if (until > s) funded.push({ from: s, to: Math.min(until, e) });
  }
  const joined: Interval[] = [];
  for (const f of funded) {
    const last = joined[joined.length - 1];
    if (last && last.to === f.from) last.to = f.to;
    else joined.push({ ...f });
  }
  return joined;
}
