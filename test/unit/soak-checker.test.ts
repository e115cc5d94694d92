import { describe, expect, it } from 'vitest';
import { check, parseDecision, type CheckResult } from '../../bench/soak/checker.js';
import type { AccountDefinition, FaultKind, OperatorActionKind, RecordedAccount, SoakCall, SoakHistory, SoakSettings } from '../../bench/soak/history.js';

/**
 * The soak checker's rules, one history each where the rule holds and the smallest change that
 * breaks it. Times are seconds since the run's start; settings: propagation 1 s, controller round
 * 1 s, block bound 5 s, restart settle 5 s, max-stale 300 s, a 600 s run.
 */

const T0 = 1_700_000_000_000;
const at = (sec: number) => T0 + sec * 1000;

const FUNDED: RecordedAccount = { enabled: true, balance: 40, ratePerMin: 1, operatorBlocked: false, maxChannels: undefined };
/** One unit of credit at 60 per minute: a call answered at x runs it dry at x + 1 s. */
const LOW: RecordedAccount = { ...FUNDED, balance: 1, ratePerMin: 60 };

class Soak {
  readonly h: SoakHistory;
  private n = 0;

  constructor(settings: Partial<SoakSettings> = {}) {
    this.h = {
      startMs: T0,
      endMs: at(600),
      settings: { maxStaleMs: 300_000, propagationMs: 1000, roundMs: 1000, blockBoundMs: 5000, restartSettleMs: 5000, ...settings },
      accounts: [],
      operatorActions: [],
      calls: [],
      faults: [],
      edgeRestarts: [],
      masters: [{ address: '127.0.0.1:6379', fromMs: T0 }],
      sentinelMasters: [{ address: '127.0.0.1:6379', fromMs: T0 }],
      controllerWrites: [],
      audit: [],
      finalRecords: { leaked: [], ghosts: [] },
    };
  }

  account(id: string, initial: RecordedAccount | null, kind: AccountDefinition['kind'] = 'funded'): this {
    this.h.accounts.push({ id, kind, initial });
    return this;
  }

  /** A call routed by `edge`, answered 10 ms and connected 20 ms after its INVITE, ended after `seconds` (undefined: still up at the end). */
  connected(account: string, sec: number, seconds: number | undefined = 1, edge = 'edge-a'): this {
    return this.call({ account, inviteMs: at(sec), answerMs: at(sec) + 10, status: 200, phrase: 'OK', edge, connectedMs: at(sec) + 20, endedMs: seconds === undefined ? undefined : at(sec) + 20 + seconds * 1000 });
  }

  /** An edge's own answer (403 or 503), 5 ms after the INVITE. */
  answered(account: string, sec: number, status: number, phrase: string, o: { edge?: string; basis?: string } = {}): this {
    const edge = o.edge ?? 'edge-a';
    const outcome = status === 503 ? 'state-unknown' : 'verdict';
    return this.call({ account, inviteMs: at(sec), answerMs: at(sec) + 5, status, phrase, edge, decision: `${outcome}; ${o.basis ?? 'basis=replica; replica=r1'}; edge=${edge}` });
  }

  call(c: Partial<SoakCall> & { account: string; inviteMs: number }): this {
    this.h.calls.push({ callId: `call-${++this.n}`, stream: 'short', answerMs: undefined, status: undefined, phrase: undefined, decision: undefined, edge: undefined, connectedMs: undefined, endedMs: undefined, ...c });
    return this;
  }

  action(kind: OperatorActionKind, account: string, sec: number, doneSec: number, after: RecordedAccount | null, ok = true): this {
    this.h.operatorActions.push({ kind, account, atMs: at(sec), doneMs: at(doneSec), after, ok });
    return this;
  }

  audit(action: 'block' | 'unblock', account: string, sec: number, by: 'controller' | 'operator' = 'controller'): this {
    this.h.audit.push({ action, account, atMs: at(sec), by });
    return this;
  }

  fault(kind: FaultKind, sec: number, endSec?: number): this {
    this.h.faults.push({ kind, target: 'x', startMs: at(sec), endMs: endSec === undefined ? undefined : at(endSec), marks: [] });
    return this;
  }

  /** The controller's cut of the last call placed, ordered at `sec`, and (when `endedSec` is given) the network's BYE to its caller then. */
  cut(sec: number, endedSec?: number, o: { account?: string; byes?: number } = {}): this {
    const c = this.h.calls[this.h.calls.length - 1]!;
    (this.h.cuts ??= []).push({ atMs: at(sec), account: o.account ?? c.account, callId: c.callId, edge: `${c.edge ?? 'edge-a'}:i1`, controller: 'controller-a' });
    if (endedSec !== undefined) Object.assign(c, { endedMs: at(endedSec), endedBy: 'network', endReason: 'Q.850;cause=52;text="out of call credit"', byesReceived: o.byes ?? 1 });
    return this;
  }

  /** An orderly restart: drained from `drainSec`, gone at `goneSec`. */
  drained(edge: string, drainSec: number, goneSec: number, readySec: number): this {
    this.h.edgeRestarts.push({ edge, drainFromMs: at(drainSec), killedMs: at(goneSec), readyMs: at(readySec) });
    return this;
  }

  restart(edge: string, killedSec: number, readySec?: number): this {
    this.h.edgeRestarts.push({ edge, killedMs: at(killedSec), readyMs: readySec === undefined ? undefined : at(readySec) });
    return this;
  }

  check(): CheckResult {
    return check(this.h);
  }

  kinds(): string[] {
    return this.check().violations.map((v) => v.kind);
  }
}

describe('reading X-Credit-Decision', () => {
  it('takes the cached copy age from a decision from the stale cache', () => {
    expect(parseDecision('out-of-credit; basis=cache; age=1800ms; because=loading; edge=edge-a')).toEqual({ outcome: 'out-of-credit', basis: 'cache', cacheAgeMs: 1800 });
    expect(parseDecision('route; basis=replica; replica=r1; local-copy; edge=edge-a')?.cacheAgeMs).toBeUndefined();
  });
});

describe('false-403: no 403 naming a cause the record does not show', () => {
  it('Out Of Call Credit to an account that is out of credit, or blocked in the audit stream, is right', () => {
    const dry = new Soak().account('dry', { ...FUNDED, balance: 0 }, 'out-of-credit').audit('block', 'dry', 2).answered('dry', 1, 403, 'Out Of Call Credit');
    expect(dry.kinds()).toEqual([]);
    expect(new Soak().account('a', FUNDED).audit('block', 'a', 50, 'operator').answered('a', 55, 403, 'Out Of Call Credit').kinds()).toEqual([]);
  });

  it('Out Of Call Credit to a funded, enabled, unblocked account is false, and the detail says what the record says', () => {
    const r = new Soak().account('a', FUNDED).answered('a', 812.3, 403, 'Out Of Call Credit').check();
    expect(r.violations.map((v) => v.kind)).toEqual(['false-403']);
    expect(r.violations[0]!.detail).toMatch(/^403 Out Of Call Credit at \+812\.3 s .*lookback 1000 ms.*but the record says enabled, balance 40, rate 1\/min, not operator-blocked \(from the start\); no audit block$/);
    expect(r.byKind['false-403']).toBe(1);
  });

  it('a block in the audit stream counts from the propagation time before its record until as long after its lift', () => {
    const blocked = () => new Soak().account('a', FUNDED).audit('block', 'a', 50, 'operator').audit('unblock', 'a', 60, 'operator');
    expect(blocked().answered('a', 60.9, 403, 'Out Of Call Credit').kinds()).toEqual([]);
    expect(blocked().answered('a', 62.1, 403, 'Out Of Call Credit').kinds()).toEqual(['false-403']);
    expect(blocked().answered('a', 49.5, 403, 'Out Of Call Credit').kinds()).toEqual([]);
  });

  it('a balance run down by calls that ended is out of credit, though the operator set it positive', () => {
    // Dry from +11.02 s, topped up at +14 s (before the controller had to block it).
    const soak = new Soak().account('low', LOW, 'low-credit').connected('low', 10, 2).answered('low', 13, 403, 'Out Of Call Credit').action('top-up', 'low', 14, 14.5, { ...LOW, balance: 40 });
    expect(soak.kinds()).toEqual([]);
    expect(new Soak().account('low', LOW, 'low-credit').connected('low', 10, 0.5).answered('low', 13, 403, 'Out Of Call Credit').kinds()).toEqual(['false-403']);
  });

  it("a call whose edge was killed under it may be charged from then (the restarted edge charges its predecessor's records): out of credit before it ends", () => {
    // Dry by its cost from +11.02 s; the balance field says so only once the call is charged.
    const running = () => new Soak().account('low', LOW, 'low-credit').connected('low', 10, 30);
    expect(running().restart('edge-a', 11.5, 12).answered('low', 13, 403, 'Out Of Call Credit').kinds()).toEqual([]);
    // (Also dry-not-blocked, no block being recorded: not what this test is about.)
    expect(running().answered('low', 13, 403, 'Out Of Call Credit').kinds()).toContain('false-403');
    // Killed only after the 403: nothing could have been charged yet.
    expect(running().restart('edge-a', 14, 15).answered('low', 13, 403, 'Out Of Call Credit').kinds()).toContain('false-403');
  });

  it('a call that outlived a SIP server restart is charged at the restart (the edge ends its record then): out of credit before its caller hangs up', () => {
    const running = () => new Soak().account('low', LOW, 'low-credit').connected('low', 10, 30);
    expect(running().fault('sip-server-restart', 11.5, 12).answered('low', 13, 403, 'Out Of Call Credit').kinds()).not.toContain('false-403');
    // Restarted only after the 403: nothing could have been charged yet.
    expect(running().fault('sip-server-restart', 14, 15).answered('low', 13, 403, 'Out Of Call Credit').kinds()).toContain('false-403');
  });

  it("a decision from the stale cache looks back by the copy's age: the top-up may not have been in it", () => {
    const toppedUp = () => new Soak().account('a', { ...FUNDED, balance: 0 }, 'out-of-credit').audit('block', 'a', 2).action('top-up', 'a', 100, 101, FUNDED).audit('unblock', 'a', 101.5);
    expect(toppedUp().answered('a', 105, 403, 'Out Of Call Credit', { basis: 'basis=cache; age=4500ms; because=timeout' }).kinds()).toEqual([]);
    expect(toppedUp().answered('a', 105, 403, 'Out Of Call Credit').kinds()).toEqual(['false-403']);
  });

  it('an operator block racing the call: either state may be seen from its start until its end plus propagation', () => {
    const racing = () => new Soak().account('a', FUNDED).action('block', 'a', 50, 50.5, { ...FUNDED, operatorBlocked: true }).action('unblock', 'a', 70, 70.5, FUNDED);
    expect(racing().answered('a', 50.1, 403, 'Out Of Call Credit').kinds()).toEqual([]);
    expect(racing().answered('a', 71.4, 403, 'Out Of Call Credit').kinds()).toEqual([]);
    expect(racing().answered('a', 72.6, 403, 'Out Of Call Credit').kinds()).toEqual(['false-403']);
    expect(racing().answered('a', 49, 403, 'Out Of Call Credit').kinds()).toEqual(['false-403']);
  });

  it('a failed operator block may still have been applied: its 403 is not false, and nothing requires it', () => {
    const soak = new Soak().account('a', FUNDED).action('block', 'a', 50, 52, { ...FUNDED, operatorBlocked: true }, false).answered('a', 300, 403, 'Out Of Call Credit').connected('a', 301);
    expect(soak.kinds()).toEqual([]);
    expect(new Soak().account('a', FUNDED).action('block', 'a', 50, 52, { ...FUNDED, operatorBlocked: true }, false).answered('a', 49, 403, 'Out Of Call Credit').kinds()).toEqual(['false-403']);
  });

  it('Account Not Enabled needs the account disabled at some instant: an enabled but blocked account was given the wrong cause', () => {
    expect(new Soak().account('off', { ...FUNDED, enabled: false }, 'disabled').answered('off', 10, 403, 'Account Not Enabled').kinds()).toEqual([]);
    expect(new Soak().account('a', { ...FUNDED, operatorBlocked: true }).answered('a', 10, 403, 'Account Not Enabled').kinds()).toEqual(['false-403']);
  });

  it('Out Of Call Credit to an account disabled throughout names the wrong cause (the edge says disabled first)', () => {
    expect(new Soak().account('off', { ...FUNDED, enabled: false, balance: 0 }, 'disabled').audit('block', 'off', 2).answered('off', 10, 403, 'Out Of Call Credit').kinds()).toEqual(['false-403']);
  });

  it('a 403 with any other phrase to an account that was fine throughout is false; to one that was not, not judged', () => {
    expect(new Soak().account('a', FUNDED).answered('a', 10, 403, 'Calls Barred').kinds()).toEqual(['false-403']);
    expect(new Soak().account('a', { ...FUNDED, enabled: false }).answered('a', 10, 403, 'Calls Barred').kinds()).toEqual([]);
  });
});

describe('forbidden-existing: no 403 Forbidden to an account that exists', () => {
  it('Forbidden to an absent account is right; to an existing one it is a violation', () => {
    expect(new Soak().account('gone', null, 'absent').answered('gone', 10, 403, 'Forbidden').kinds()).toEqual([]);
    expect(new Soak().account('a', FUNDED).answered('a', 10, 403, 'Forbidden').kinds()).toEqual(['forbidden-existing']);
  });

  it('a delete makes Forbidden possible from its start; a call answered before it is still a violation', () => {
    const deleted = () => new Soak().account('a', FUNDED).action('delete', 'a', 50, 51, null);
    expect(deleted().answered('a', 50.5, 403, 'Forbidden').kinds()).toEqual([]);
    expect(deleted().answered('a', 300, 403, 'Forbidden').kinds()).toEqual([]);
    expect(deleted().answered('a', 49, 403, 'Forbidden').kinds()).toEqual(['forbidden-existing']);
  });

  it("a created account may still read absent until its command is done and propagated, and through the call's own lookback", () => {
    const created = () => new Soak().account('new', null, 'absent').action('create', 'new', 50, 51, FUNDED);
    expect(created().answered('new', 52.9, 403, 'Forbidden').kinds()).toEqual([]);
    expect(created().answered('new', 53.1, 403, 'Forbidden').kinds()).toEqual(['forbidden-existing']);
  });

  it('a failed delete may have deleted it: Forbidden is never certain to be false after it', () => {
    expect(new Soak().account('a', FUNDED).action('delete', 'a', 50, 60, null, false).answered('a', 500, 403, 'Forbidden').kinds()).toEqual([]);
  });
});

describe('unexpected-503: an edge that found an account answers it from its stale cache for max-stale', () => {
  const unknown = 'basis=none; because=timeout';
  const foundThen503 = () => new Soak().account('a', FUNDED).connected('a', 10);

  it('a 503 from the edge that routed the account 10 s before is a violation', () => {
    const r = foundThen503().answered('a', 20, 503, 'Service Unavailable', { basis: unknown }).check();
    expect(r.violations.map((v) => v.kind)).toEqual(['unexpected-503']);
    expect(r.violations[0]).toMatchObject({ edge: 'edge-a', account: 'a' });
  });

  it('... but not from the other edge, which never found it', () => {
    expect(foundThen503().answered('a', 20, 503, 'Service Unavailable', { basis: unknown, edge: 'edge-b' }).kinds()).toEqual([]);
  });

  it('... nor once the copy may be older than max-stale', () => {
    expect(foundThen503().answered('a', 310.1, 503, 'Service Unavailable', { basis: unknown }).kinds()).toEqual([]);
    expect(foundThen503().answered('a', 309.9, 503, 'Service Unavailable', { basis: unknown }).kinds()).toEqual(['unexpected-503']);
  });

  it('a found answer given from the cache dates from its copy, not from the answer', () => {
    const fromCache = (age: number) => new Soak().account('a', { ...FUNDED, operatorBlocked: true }).answered('a', 10, 403, 'Out Of Call Credit', { basis: `basis=cache; age=${age}ms; because=timeout` });
    expect(fromCache(295_000).answered('a', 20, 503, 'Service Unavailable', { basis: unknown }).kinds()).toEqual([]);
    expect(fromCache(5_000).answered('a', 20, 503, 'Service Unavailable', { basis: unknown }).kinds()).toEqual(['unexpected-503']);
  });

  it('a restart of that edge between the found answer and the 503 empties its cache', () => {
    expect(foundThen503().restart('edge-a', 15, 16).answered('a', 100, 503, 'Service Unavailable', { basis: unknown }).kinds()).toEqual([]);
    expect(foundThen503().restart('edge-b', 15, 16).answered('a', 100, 503, 'Service Unavailable', { basis: unknown }).kinds()).toEqual(['unexpected-503']);
  });

  it('a deleted account routed from the cache after its delete (held while its absence is confirmed), then a 503: no violation', () => {
    // Deleted at +15 s; routed at +200 s from a copy of before the delete (no header says so); 503 at +300 s.
    const served = new Soak().account('a', FUNDED).connected('a', 10).action('delete', 'a', 15, 16, null).connected('a', 200);
    expect(served.answered('a', 300, 503, 'Service Unavailable', { basis: 'basis=none; because=mass-absence' }).kinds()).toEqual([]);
  });

  it('a delete of the account (even a failed one) between them excuses it, and so does a 403 Forbidden from that edge', () => {
    expect(foundThen503().action('delete', 'a', 15, 16, null, false).answered('a', 100, 503, 'Service Unavailable', { basis: unknown }).kinds()).toEqual([]);
    const forgot = new Soak().account('a', FUNDED).action('delete', 'a', 15, 16, null).action('create', 'a', 17, 18, FUNDED).connected('a', 10);
    expect(forgot.answered('a', 30, 503, 'Service Unavailable', { basis: unknown }).kinds()).toEqual([]);
    const forgotten = new Soak().account('a', FUNDED).connected('a', 10).answered('a', 20, 403, 'Forbidden');
    expect(forgotten.answered('a', 30, 503, 'Service Unavailable', { basis: unknown }).kinds()).toEqual(['forbidden-existing']);
  });
});

describe("sip-server-503 and no-answer: only around a restart of the SIP server or an edge", () => {
  const server503 = (soak: Soak, sec: number) => soak.call({ account: 'a', inviteMs: at(sec), answerMs: at(sec) + 5, status: 503, phrase: 'Service Unavailable' });
  const unanswered = (soak: Soak, sec: number) => soak.call({ account: 'a', inviteMs: at(sec) });

  it('a 503 no edge decided, outside every restart window, is a violation', () => {
    expect(server503(new Soak().account('a', FUNDED), 100).kinds()).toEqual(['sip-server-503']);
  });

  it('during a SIP server restart and for the settle time after it, it is not', () => {
    const restarted = () => new Soak().account('a', FUNDED).fault('sip-server-restart', 95, 98);
    expect(server503(restarted(), 102.9).kinds()).toEqual([]);
    expect(server503(restarted(), 103.1).kinds()).toEqual(['sip-server-503']);
  });

  it('an edge restart exempts from its kill until its readiness plus the settle time; never ready: to the end', () => {
    expect(server503(new Soak().account('a', FUNDED).restart('edge-a', 90, 100), 104).kinds()).toEqual([]);
    expect(server503(new Soak().account('a', FUNDED).restart('edge-a', 90, 100), 106).kinds()).toEqual(['sip-server-503']);
    expect(server503(new Soak().account('a', FUNDED).restart('edge-a', 90), 500).kinds()).toEqual([]);
  });

  it('a call with no final answer is a violation, unless in a restart window or placed in the last settle time of the run', () => {
    expect(unanswered(new Soak().account('a', FUNDED), 100).kinds()).toEqual(['no-answer']);
    expect(unanswered(new Soak().account('a', FUNDED).fault('edge-kill', 99, 100), 104).kinds()).toEqual([]);
    expect(unanswered(new Soak().account('a', FUNDED), 595.5).kinds()).toEqual([]);
    // A restart that began while its answer was still due (the settle time after the INVITE) may have swallowed it.
    expect(unanswered(new Soak().account('a', FUNDED).fault('sip-server-restart', 104, 106), 100).kinds()).toEqual([]);
    expect(unanswered(new Soak().account('a', FUNDED).fault('sip-server-restart', 106, 107), 100).kinds()).toEqual(['no-answer']);
    expect(unanswered(new Soak().account('a', FUNDED), 594.5).kinds()).toEqual(['no-answer']);
  });
});

describe('false-channel-limit: Channel Limit Reached only when the calls in progress reached the limit', () => {
  const LIMITED: RecordedAccount = { ...FUNDED, maxChannels: 2 };

  it('with two calls up on a limit of two, the third is rightly refused; with one up, it is a violation', () => {
    expect(new Soak().account('c', LIMITED, 'channel-limited').connected('c', 10, 60).connected('c', 11, 60).answered('c', 20, 403, 'Channel Limit Reached').kinds()).toEqual([]);
    expect(new Soak().account('c', LIMITED, 'channel-limited').connected('c', 10, 60).answered('c', 20, 403, 'Channel Limit Reached').kinds()).toEqual(['false-channel-limit']);
  });

  it('a call that ended within the lookback and the propagation time before the INVITE still counts', () => {
    // 403 to the INVITE at +20 s: counted from +18 s.
    expect(new Soak().account('c', LIMITED, 'channel-limited').connected('c', 10, 60).connected('c', 11, 7.5).answered('c', 20, 403, 'Channel Limit Reached').kinds()).toEqual([]);
    expect(new Soak().account('c', LIMITED, 'channel-limited').connected('c', 10, 60).connected('c', 11, 6.5).answered('c', 20, 403, 'Channel Limit Reached').kinds()).toEqual(['false-channel-limit']);
  });

  it('an account with no limit in any recorded state is never at its limit', () => {
    expect(new Soak().account('a', FUNDED).connected('a', 10, 60).connected('a', 11, 60).answered('a', 20, 403, 'Channel Limit Reached').kinds()).toEqual(['false-channel-limit']);
  });

  it('more calls connected at once than the limit is a violation, and the detail says when and through which edges', () => {
    const r = new Soak().account('c', LIMITED, 'channel-limited').connected('c', 10, 60).connected('c', 11, 60).connected('c', 12, 60, 'edge-b').check();
    expect(r.violations.map((v) => v.kind)).toEqual(['channel-overshoot']);
    expect(r.violations[0]!.detail).toMatch(/^3 calls connected at once from \+12\.0 s to \+70\.0 s \(limit 2\), admitted by edge-a, edge-b; none lost to the product$/);
    expect(r.figures.channelLimitOvershoots).toBe(1);
    expect(r.figures.overshootsConcurrent).toBe(1);
    expect(r.figures.worstOvershoot).toBe(1);
  });

  /** Two calls up on a limit of two, and a third through the other edge at +20 s. */
  const overLimit = () => new Soak().account('c', LIMITED, 'channel-limited').connected('c', 10, 60).connected('c', 11, 60).connected('c', 20, 60, 'edge-b');

  it('an overshoot after the product lost sight of a call (its edge killed under it) is counted apart from one of concurrent admission', () => {
    const unseen = overLimit().restart('edge-a', 15, 16).check();
    expect(unseen.figures).toMatchObject({ channelLimitOvershoots: 1, overshootsUnseen: 1, overshootsConcurrent: 0 });
    expect(unseen.violations).toEqual([]);
    const concurrent = overLimit().restart('edge-a', 25, 26).check();
    expect(concurrent.figures).toMatchObject({ channelLimitOvershoots: 1, overshootsUnseen: 0, overshootsConcurrent: 1 });
    expect(concurrent.violations.map((v) => v.kind)).toContain('channel-overshoot');
  });

  it('an overshoot where a call was admitted while the master could not answer (a fault of the master, and 5 s after) is counted apart: its edge decided on its own count, by design', () => {
    const withoutMaster = overLimit().fault('master-freeze-failover', 16, 18).check();
    expect(withoutMaster.figures).toMatchObject({ channelLimitOvershoots: 1, overshootsWithoutMaster: 1, overshootsConcurrent: 0 });
    expect(withoutMaster.violations).toEqual([]);
    const concurrent = overLimit().fault('master-freeze-failover', 30, 32).check();
    expect(concurrent.figures).toMatchObject({ overshootsWithoutMaster: 0, overshootsConcurrent: 1 });
    expect(concurrent.violations.map((v) => v.kind)).toContain('channel-overshoot');
  });

  it('a call whose record a lost dataset wiped is unseen until its edge re-asserts it (the liveness TTL after the fault), then counts again', () => {
    const overLimitAt = (sec: number) => new Soak().account('c', LIMITED, 'channel-limited').connected('c', 10, 90).connected('c', 11, 90).fault('flushall', 30, 35).connected('c', sec, 90, 'edge-b').check();
    expect(overLimitAt(36).figures).toMatchObject({ overshootsUnseen: 1, overshootsConcurrent: 0 });
    expect(overLimitAt(36).violations).toEqual([]);
    expect(overLimitAt(51).violations.map((v) => v.kind)).toEqual(['channel-overshoot']);
  });
});

describe('funded-blocked: the controller blocks only accounts its own rule finds exhausted', () => {
  it('a block of an account with its whole balance is a violation; of one whose call ran it dry, not', () => {
    const r = new Soak().account('a', FUNDED).audit('block', 'a', 100).check();
    expect(r.violations.map((v) => v.kind)).toEqual(['funded-blocked']);
    expect(r.violations[0]!.detail).toContain('projected balance was at least 40');
    expect(new Soak().account('low', LOW, 'low-credit').connected('low', 10, undefined).audit('block', 'low', 12).kinds()).toEqual([]);
  });

  it("a block just before the account ran dry, within the timing slack (a round and the propagation time), is not", () => {
    // Dry at +11.02 s (answered +10.02 s, 1 unit at 1/s); slack 2 s of one call's cost = 2 units.
    expect(new Soak().account('low', LOW, 'low-credit').connected('low', 10, undefined).audit('block', 'low', 10.5).kinds()).toEqual([]);
    expect(new Soak().account('low', LOW, 'low-credit').connected('low', 10, undefined).audit('block', 'low', 9).kinds()).toEqual(['funded-blocked']);
  });

  it('a block of an account with no balance in any recorded state is a violation', () => {
    expect(new Soak().account('a', { ...FUNDED, balance: undefined }).audit('block', 'a', 100).check().violations[0]?.detail).toMatch(/no balance to run dry/);
  });

  it('a top-up racing the block leaves the old balance possible until it is done and propagated', () => {
    // Dry at +96.02 s; topped up to 40 over +96.5 .. +97 s: the old balance is possible until +98 s.
    const racing = () => new Soak().account('low', LOW, 'low-credit').connected('low', 95, undefined).action('top-up', 'low', 96.5, 97, { ...LOW, balance: 40 });
    expect(racing().audit('block', 'low', 98.5).audit('unblock', 'low', 100).kinds()).toEqual([]);
    expect(racing().audit('block', 'low', 101).kinds()).toEqual(['funded-blocked']);
  });
});

describe('funded-blocked, later: the controller lifts its own block when the cause clears', () => {
  // Dry at +11.02 s, blocked at +12 s; topped up over +20 .. +20.5 s: certainly funded from +23.5 s
  // (done, propagated, and past the controller's round and propagation), to be lifted by +28.5 s.
  const toppedUp = () => new Soak().account('low', LOW, 'low-credit').connected('low', 10, 5).audit('block', 'low', 12).action('top-up', 'low', 20, 20.5, { ...LOW, balance: 40 });

  it('lifted within the bound after the top-up: fine; never lifted, or too late: a violation at the deadline', () => {
    expect(toppedUp().audit('unblock', 'low', 25).kinds()).toEqual([]);
    const r = toppedUp().check();
    expect(r.violations.map((v) => v.kind)).toEqual(['funded-blocked']);
    expect(r.violations[0]!.atMs).toBeCloseTo(at(28.5), 3);
    expect(toppedUp().audit('unblock', 'low', 30).kinds()).toEqual(['funded-blocked']);
  });

  it('not judged when the operator blocked it too (the controller lifts only its own blocks)', () => {
    expect(toppedUp().audit('block', 'low', 15, 'operator').kinds()).toEqual([]);
  });
});

describe('dry-not-blocked: an account that ran dry is blocked within the bound of controller-healthy time', () => {
  // Answered at +10.02 s, dry at +11.02 s: the deadline is +16.02 s.
  const dry = (settings: Partial<SoakSettings> = {}) => new Soak(settings).account('low', LOW, 'low-credit').connected('low', 10, 500);

  it('blocked within the bound: fine; never blocked: a violation at its deadline', () => {
    expect(dry().audit('block', 'low', 14).kinds()).toEqual([]);
    const r = dry().check();
    expect(r.violations.map((v) => v.kind)).toEqual(['dry-not-blocked']);
    expect(r.violations[0]!.atMs).toBeCloseTo(at(16.02), 3);
    expect(r.figures.dryIntervals).toBe(1);
  });

  it('blocked after the bound: a violation', () => {
    expect(dry().audit('block', 'low', 17).kinds()).toEqual(['dry-not-blocked']);
  });

  it('a block just before it ran dry, within the propagation time, counts', () => {
    expect(dry().audit('block', 'low', 10.5).kinds()).toEqual([]);
  });

  it('during a failover the bound stops: dry 1 s before it, the 4 s left count from 10 s after it ended', () => {
    // Impaired +12 s .. +30 s (the failover to +20 s, then 10 s): deadline +34.02 s.
    expect(dry().fault('master-freeze-failover', 12, 20).audit('block', 'low', 33.9).kinds()).toEqual([]);
    expect(dry().fault('master-freeze-failover', 12, 20).audit('block', 'low', 34.2).kinds()).toEqual(['dry-not-blocked']);
  });

  it('at or below zero with no call in progress: no block needed (the edge refuses it by its balance)', () => {
    expect(new Soak().account('out', { ...FUNDED, balance: 0 }, 'out-of-credit').kinds()).toEqual([]);
    // Its call ended at +15 s: dry from +11.02 s, blocked by +16.02 s is no longer required.
    expect(new Soak().account('low', LOW, 'low-credit').connected('low', 10, 5).kinds()).toEqual([]);
  });

  it('a SIP server restart ends its calls for the product (their ends cannot be seen): no block needed after it', () => {
    // Dry at +11.02 s, the SIP server restarted at +12 s: the call no longer counts from then on.
    expect(dry().fault('sip-server-restart', 12, 14).kinds()).toEqual([]);
    expect(dry().fault('sip-server-restart', 30, 32).kinds()).toEqual(['dry-not-blocked']);
  });

  it('topped up before its deadline, or the run ended first: not judged', () => {
    const r = dry().action('top-up', 'low', 13, 13.5, FUNDED).check();
    expect(r.violations).toEqual([]);
    expect(r.figures).toMatchObject({ dryIntervals: 1, dryIntervalsJudged: 0 });
    expect(new Soak().account('low', LOW, 'low-credit').connected('low', 596, undefined).kinds()).toEqual([]);
  });

  it('a block lifted while the account is still dry must be put back within the bound', () => {
    // Blocked at +14 s, unblocked by the operator at +30 s: blocked again by +35 s.
    const lifted = () => dry().audit('block', 'low', 14).audit('unblock', 'low', 30, 'operator');
    expect(lifted().audit('block', 'low', 33).kinds()).toEqual([]);
    const r = lifted().check();
    expect(r.violations.map((v) => v.kind)).toEqual(['dry-not-blocked']);
    expect(r.violations[0]!.atMs).toBe(at(35));
  });

  it('an account already blocked by the operator when it ran dry needs no block of the controller', () => {
    expect(dry().action('block', 'low', 5, 5.5, { ...LOW, operatorBlocked: true }).kinds()).toEqual([]);
  });

  it("a call whose edge was killed under it is in doubt, then removed with the dead edge's records: no block can be required for it", () => {
    expect(dry().restart('edge-a', 11, 12).kinds()).toEqual([]);
    expect(dry({ deadEdgeRecordMs: 20_000 }).restart('edge-a', 11, 12).kinds()).toEqual([]);
    // Killed only after the bound had passed: the block was due before.
    expect(dry({ deadEdgeRecordMs: 20_000 }).restart('edge-a', 20, 21).kinds()).toEqual(['dry-not-blocked']);
  });
});

describe('a lost dataset takes the blocks with it (billing re-provisions the recorded states)', () => {
  const OUT: RecordedAccount = { ...FUNDED, balance: 0 };
  // Blocked at +2 s; FLUSHALL +100 .. +110 s; impaired until +120 s: blocked again by +125 s.
  // A call in progress all along keeps it dry (its cost), so a block is needed.
  const wiped = () => new Soak().account('out', OUT, 'out-of-credit').connected('out', 1, 500).audit('block', 'out', 2).fault('flushall', 100, 110);

  it('an account still dry after it must be blocked again within the bound', () => {
    expect(wiped().audit('block', 'out', 123).kinds()).toEqual([]);
    expect(wiped().kinds()).toEqual(['dry-not-blocked']);
  });

  it('a block from before it no longer excuses Out Of Call Credit to an account topped up since', () => {
    const r = wiped().audit('block', 'out', 123).action('top-up', 'out', 200, 200.5, FUNDED).audit('unblock', 'out', 203);
    expect(r.answered('out', 130, 403, 'Out Of Call Credit').kinds()).toEqual([]);
    // Topped up just before the FLUSHALL, the block never lifted in the audit: gone with the dataset.
    const topped = new Soak().account('out', OUT, 'out-of-credit').audit('block', 'out', 2).action('top-up', 'out', 98, 98.5, FUNDED).fault('flushall', 100, 110);
    expect(topped.answered('out', 130, 403, 'Out Of Call Credit').kinds()).toEqual(['false-403']);
  });

  it('a block it may have taken is not a block left on a funded account', () => {
    const lost = new Soak().account('low', LOW, 'low-credit').connected('low', 10, 5).audit('block', 'low', 12).fault('mass-delete', 15, 18).action('top-up', 'low', 20, 20.5, { ...LOW, balance: 40 });
    expect(lost.kinds()).toEqual([]);
  });
});

describe('write-to-non-master: a controller writes only on the master of the instant (no slack)', () => {
  /** Promoted :6390 at +100 s; the Sentinels' majority still names :6379 (each test moves it). */
  const switched = () => {
    const soak = new Soak();
    soak.h.masters = [
      { address: '127.0.0.1:6390', fromMs: at(100) },
      { address: '127.0.0.1:6379', fromMs: T0 },
    ];
    return soak;
  };
  const write = (soak: Soak, node: string, ms: number) => {
    soak.h.controllerWrites.push({ node, atMs: ms, client: 'credit-controller-a', command: 'HSET account:a credit_blocked 1' });
    return soak;
  };

  it('on the old master up to the switch, on the new one after: fine', () => {
    expect(write(write(switched(), '127.0.0.1:6379', at(100) - 1), '127.0.0.1:6390', at(100)).kinds()).toEqual([]);
  });

  it('on the old master one ms after the switch, the Sentinels agreeing at once: a violation', () => {
    const soak = switched();
    soak.h.sentinelMasters.push({ address: '127.0.0.1:6390', fromMs: at(100) });
    const r = write(soak, '127.0.0.1:6379', at(100) + 1).check();
    expect(r.violations.map((v) => v.kind)).toEqual(['write-to-non-master']);
    expect(r.violations[0]!.detail).toContain('127.0.0.1:6390 was the master from +100.0 s');
  });

  it('on the old master after a promotion, while a majority of the Sentinels still named it: fine (no client can know yet)', () => {
    const soak = switched();
    soak.h.sentinelMasters.push({ address: '127.0.0.1:6390', fromMs: at(100.8) });
    expect(write(soak, '127.0.0.1:6379', at(100.5)).kinds()).toEqual([]);
  });

  it('on the old master once a majority of the Sentinels named the new one: a violation (a writer left behind)', () => {
    const soak = switched();
    soak.h.sentinelMasters.push({ address: '127.0.0.1:6390', fromMs: at(100.8) });
    expect(write(soak, '127.0.0.1:6379', at(100.8) + 1).kinds()).toEqual(['write-to-non-master']);
  });

  it('on a third node, named by neither view: a violation', () => {
    expect(write(switched(), '127.0.0.1:6391', at(50)).kinds()).toEqual(['write-to-non-master']);
  });

  it('a write before the first epoch is judged against the first', () => {
    const r = write(switched(), '127.0.0.1:6390', T0 - 500).check();
    expect(r.violations.map((v) => v.kind)).toEqual(['write-to-non-master']);
    expect(r.violations[0]!.detail).toContain('at -0.5 s');
  });
});

describe('call records at the end', () => {
  it('each leaked record and each ghost total is a violation', () => {
    const soak = new Soak();
    soak.h.finalRecords = { leaked: [{ account: 'a', callId: 'c1' }], ghosts: [{ account: 'b', detail: 'calls 1, records 0' }] };
    const r = soak.check();
    expect(r.violations.map((v) => v.kind)).toEqual(['leaked-call-record', 'ghost-call-record']);
    expect(r.byKind).toMatchObject({ 'leaked-call-record': 1, 'ghost-call-record': 1, 'false-403': 0 });
  });
});

describe('a quiet history', () => {
  it('has no violation and counts what it judged', () => {
    const r = new Soak().account('a', FUNDED).account('off', { ...FUNDED, enabled: false }, 'disabled').connected('a', 10).answered('off', 11, 403, 'Account Not Enabled').check();
    expect(r.violations).toEqual([]);
    expect(r.figures).toMatchObject({ calls: 2, judged403: 1, judged503: 0, blocksChecked: 0, otherFailures: 0 });
  });
});

describe('funded-cut and cut-twice: the network ends a call only on the evidence that blocks, once', () => {
  // A low-credit call answered at +10.02 s runs its account dry at +11.02 s, blocked at +12 s.
  const dry = () => new Soak({ cutBoundMs: 7000 }).account('low', LOW, 'low-credit').connected('low', 10, 500).audit('block', 'low', 12);

  it('a cut after the account ran dry: fine, counted, and its delay and overdraft are figures', () => {
    const r = dry().cut(12.5, 13.02).check();
    expect(r.violations).toEqual([]);
    expect(r.figures.cuts).toMatchObject({ callsCut: 1, dryCalls: 1, delayMs: { p50: 2000, p99: 2000, max: 2000 }, worstOverdraft: 2 });
  });

  it('a cut of a funded call is a violation, and the detail says what the balance was', () => {
    const r = new Soak({ cutBoundMs: 7000 }).account('a', FUNDED).connected('a', 10, 500).cut(20, 20.5).check();
    expect(r.violations.map((v) => v.kind)).toEqual(['funded-cut']);
    expect(r.violations[0]!.detail).toMatch(/projected balance was at least 39\.8/);
  });

  it('a cut within the timing slack before the account ran dry is not (a round and the propagation time)', () => {
    expect(dry().cut(10.5, 11).kinds()).toEqual([]);
    expect(new Soak({ cutBoundMs: 7000 }).account('low', LOW, 'low-credit').connected('low', 10, 500).cut(8.5, 9).kinds()).toContain('funded-cut');
  });

  it('a cut of an account with no balance is a violation', () => {
    expect(new Soak().account('a', { ...FUNDED, balance: undefined }).connected('a', 10, 500).cut(20, 20.5).kinds()).toEqual(['funded-cut']);
  });

  it("a call ended by the network with no cut in the audit stream, or on another account's cut, is a violation", () => {
    const unaudited = dry();
    Object.assign(unaudited.h.calls[0]!, { endedMs: at(13), endedBy: 'network' });
    expect(unaudited.check().violations[0]!.detail).toMatch(/no cut of it/);
    expect(dry().cut(12.5, 13, { account: 'other' }).check().violations[0]!.detail).toMatch(/another account's evidence/);
  });

  it('... unless the audit entries of that moment may have been lost with the master', () => {
    const unaudited = dry().fault('flushall', 12.8, 20);
    Object.assign(unaudited.h.calls[0]!, { endedMs: at(13), endedBy: 'network' });
    expect(unaudited.kinds()).toEqual([]);
  });

  it('two BYEs to one caller (not retransmissions) are a call ended twice', () => {
    expect(dry().cut(12.5, 13, { byes: 2 }).kinds()).toEqual(['cut-twice']);
  });
});

describe('dry-not-cut: every call of an account that ran dry ends within the cut bound of controller-healthy time', () => {
  const dry = () => new Soak({ cutBoundMs: 7000 }).account('low', LOW, 'low-credit').connected('low', 10, 500).audit('block', 'low', 12);

  it('a call running on past the bound is a violation at its deadline; without the setting, not judged', () => {
    const r = dry().check();
    expect(r.violations.map((v) => v.kind)).toEqual(['dry-not-cut']);
    expect(r.violations[0]!.atMs).toBeCloseTo(at(18.02), 3);
    expect(new Soak().account('low', LOW, 'low-credit').connected('low', 10, 500).audit('block', 'low', 12).kinds()).toEqual([]);
  });

  it('ended by its caller within the bound, or cut after it: fine, and a violation', () => {
    expect(new Soak({ cutBoundMs: 7000 }).account('low', LOW, 'low-credit').connected('low', 10, 5).audit('block', 'low', 12).kinds()).toEqual([]);
    expect(dry().cut(12.5, 19).kinds()).toEqual(['dry-not-cut']);
  });

  it('a call answered while the account was already dry counts from its answer', () => {
    // Dry from +11.02 s on the first call; a second answered at +14.02 s is due by +21.02 s.
    const two = () => dry().cut(12.5, 13).connected('low', 14, 500);
    expect(two().cut(20, 20.5).kinds()).toEqual([]);
    expect(two().kinds()).toEqual(['dry-not-cut']);
  });

  it('during a failover the bound stops', () => {
    // Impaired +12 s .. +30 s: 6 s of the bound are left, so the deadline is +36.02 s.
    expect(dry().fault('cut-failover', 12, 20).cut(33, 35).kinds()).toEqual([]);
    expect(dry().fault('cut-failover', 12, 20).cut(36, 36.5).kinds()).toEqual(['dry-not-cut']);
  });

  it('topped up before the deadline: not judged', () => {
    expect(dry().action('top-up', 'low', 13, 13.5, FUNDED).audit('unblock', 'low', 14).kinds()).toEqual([]);
  });

  it('a call whose edge was killed under it cannot be ended by anyone: counted apart, not judged', () => {
    const r = dry().restart('edge-a', 11.5, 13).check();
    expect(r.violations.map((v) => v.kind)).not.toContain('dry-not-cut');
    expect(r.figures.cuts).toMatchObject({ dryCalls: 0, dryCallsLost: 1 });
  });
});

describe('an orderly edge restart (SIGTERM): it drains, then it is gone', () => {
  it("its 503s from the drain's start are excused, as a kill's are", () => {
    const found = () => new Soak().account('a', FUNDED).connected('a', 10, 1).answered('a', 21, 503, 'Service Unavailable', { basis: 'basis=none; because=shutting-down' });
    expect(found().kinds()).toEqual(['unexpected-503']);
    expect(found().drained('edge-a', 20, 25, 30).kinds()).toEqual([]);
  });

  it('a call carried through the drain is still judged (and must be cut); one still up when the edge is gone is counted apart', () => {
    const dry = () => new Soak({ cutBoundMs: 7000 }).account('low', LOW, 'low-credit').connected('low', 10, 500).audit('block', 'low', 12);
    // Hung up by its caller at +30 s, within the drain (over at +40 s): it had to be cut by +18 s.
    const carried = () => new Soak({ cutBoundMs: 7000 }).account('low', LOW, 'low-credit').connected('low', 10, 20).audit('block', 'low', 12).drained('edge-a', 11, 40, 45);
    expect(carried().cut(12.5, 13).kinds()).toEqual([]);
    expect(carried().kinds()).toEqual(['dry-not-cut']);
    const gone = dry().drained('edge-a', 11, 12, 15).check();
    expect(gone.violations.map((v) => v.kind)).not.toContain('dry-not-cut');
    expect(gone.figures.cuts).toMatchObject({ dryCalls: 0, dryCallsLost: 1 });
  });
});
