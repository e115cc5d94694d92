import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeCallRecord, parseCallRecord, type CallRecord } from '../../src/calls/records.js';
import { Breaker, breakerVerdict } from '../../src/control/breaker.js';
import { actionFor, assess, type AccountReads } from '../../src/control/projection.js';
import { callsInProgressFrom, callsInProgressOf } from '../../src/edge/channel-count.js';

const T0 = 1_700_000_000_000;
const call = (callId: string, minutesAgo: number, rate?: number, extra: Partial<CallRecord> = {}): [string, string] => [
  callId,
  encodeCallRecord({ callId, account: 'a', start: T0 - minutesAgo * 60_000, node: 'edge-1', instance: 'i1', ...(rate !== undefined && { rate }), ...extra }),
];
const reads = (account: Record<string, string> | null, calls: [string, string][] | null = []): AccountReads => ({
  accountId: 'a',
  account,
  calls: calls === null ? null : Object.fromEntries(calls),
});

describe('projected balance', () => {
  it('is balance minus rate x minutes so far for each call', () => {
    const a = assess(reads({ enabled: '1', balance: '10', rate: '0.5' }, [call('c1', 4), call('c2', 2, 1)]), T0);
    expect(a).toMatchObject({ kind: 'funded', balance: 10, spent: 4, projected: 6, calls: 2 });
  });

  it('at or below zero is exhausted -> block; a block of ours on a funded account -> unblock', () => {
    const exhausted = assess(reads({ enabled: '1', balance: '1', rate: '0.5' }, [call('c1', 2)]), T0);
    expect(exhausted).toMatchObject({ kind: 'exhausted', projected: 0 });
    expect(actionFor(exhausted)).toBe('block');
    const ours = assess(reads({ enabled: '1', balance: '5', rate: '0.5', credit_blocked: '1', credit_blocked_by: 'controller' }), T0);
    expect(actionFor(ours)).toBe('unblock');
  });

  it("never lifts an operator's block, and never blocks twice", () => {
    const operators = assess(reads({ enabled: '1', balance: '5', credit_blocked: '1', credit_block_reason: 'fraud' }), T0);
    expect(actionFor(operators)).toBe('none');
    const already = assess(reads({ enabled: '1', balance: '0', credit_blocked: '1', credit_blocked_by: 'controller' }), T0);
    expect(actionFor(already)).toBe('none');
  });

  it('a disabled account is judged on credit alone (enabled is the operator flag, never touched)', () => {
    expect(actionFor(assess(reads({ enabled: '0', balance: '0' }), T0))).toBe('block');
  });

  it.each<[string, AccountReads, string]>([
    ['missing account hash', reads({}, [call('c1', 1, 1)]), 'missing-account'],
    ['garbage balance', reads({ enabled: '1', balance: 'ten', rate: '1' }, [call('c1', 100)]), 'bad-account'],
    ['garbage rate', reads({ enabled: '1', balance: '1', rate: 'x' }, [call('c1', 100)]), 'bad-account'],
    ['no rate anywhere', reads({ enabled: '1', balance: '1' }, [call('c1', 100)]), 'no-rate'],
    ['garbage call record', reads({ enabled: '1', balance: '1', rate: '1' }, [['c1', '{not json']]), 'bad-call-record'],
    ['account read failed', reads(null), 'read-failed'],
    ['calls read failed', reads({ enabled: '1', balance: '1', rate: '1' }, null), 'read-failed'],
    ['no balance on an account we blocked', reads({ enabled: '1', credit_blocked: '1', credit_blocked_by: 'controller' }), 'no-balance'],
  ])('%s -> unknown, no action', (_label, input, cause) => {
    const a = assess(input, T0);
    expect(a).toMatchObject({ kind: 'unknown', cause });
    expect(actionFor(a)).toBe('none');
  });

  it('a call whose edge is in doubt makes the account unknown', () => {
    const input = { ...reads({ enabled: '1', balance: '1', rate: '1' }, [call('c1', 100)]), doubtfulCalls: new Set(['c1']) };
    expect(assess(input, T0)).toMatchObject({ kind: 'unknown', cause: 'edge-in-doubt' });
  });

  it('no balance field and no block of ours: not credit-limited, no action', () => {
    expect(assess(reads({ enabled: '1', rate: '1' }, [call('c1', 100)]), T0)).toEqual({ kind: 'not-credit-limited', accountId: 'a' });
  });

  it('property: whatever the hash holds, an account is blocked only with a parsed balance whose projection is <= 0', () => {
    const value = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('0', '1', '-1', '0.5', '100', ''), fc.integer({ min: -5, max: 50 }).map(String));
    const fields = fc.dictionary(fc.constantFrom('enabled', 'balance', 'rate', 'credit_blocked', 'credit_blocked_by', 'max_channels'), value);
    fc.assert(
      fc.property(fields, fc.array(fc.tuple(fc.nat(30), fc.option(fc.nat(5), { nil: undefined }))), (hash, calls) => {
        const a = assess(reads(hash, calls.map(([m, r], i) => call(`c${i}`, m, r))), T0);
        if (actionFor(a) !== 'block') return;
        expect(a.kind).toBe('exhausted');
        expect(Number(hash.balance)).not.toBeNaN();
        if (a.kind === 'exhausted') expect(a.projected).toBeLessThanOrEqual(0);
      }),
    );
  });
});

describe('call records', () => {
  it('round-trip, and anything else parses to undefined', () => {
    const record: CallRecord = { callId: 'x@h', account: 'a', start: T0, node: 'edge-1', instance: 'i', rate: 0.02 };
    expect(parseCallRecord(encodeCallRecord(record))).toEqual(record);
    for (const bad of ['', 'null', '{}', '{"callId":"x"}', JSON.stringify({ ...record, rate: -1 }), JSON.stringify({ ...record, extra: 1 })]) {
      expect(parseCallRecord(bad)).toBeUndefined();
    }
  });
});

describe('breaker', () => {
  const settings = { maxBlocks: 3, maxShare: 0.5, minAccountsForShare: 4, windowMs: 60_000 };

  it('opens when more than max_blocks would be newly blocked in the window', () => {
    expect(breakerVerdict({ recent: 0, candidates: 3, evaluated: 100, settings }).open).toBe(false);
    expect(breakerVerdict({ recent: 1, candidates: 3, evaluated: 100, settings }).open).toBe(true);
  });

  it('opens on the share of evaluated accounts, from min_accounts', () => {
    expect(breakerVerdict({ recent: 0, candidates: 3, evaluated: 4, settings }).open).toBe(true);
    expect(breakerVerdict({ recent: 0, candidates: 2, evaluated: 3, settings }).open).toBe(false);
  });

  it('never opens with nothing to block; closes when the condition clears; the window slides', () => {
    const b = new Breaker(settings);
    expect(b.judge(5, 100, T0)).toMatchObject({ open: true, changed: true });
    expect(b.judge(5, 100, T0 + 1000)).toMatchObject({ open: true, changed: false });
    expect(b.judge(1, 100, T0 + 2000)).toMatchObject({ open: false, changed: true });
    b.record(3, T0 + 2000);
    expect(b.judge(1, 100, T0 + 3000).open).toBe(true);
    expect(b.judge(1, 100, T0 + 2000 + 60_000).open).toBe(false);
  });
});

describe('calls in progress for the channel limit', () => {
  it('known: the larger of the replica count and this edge’s own; unknown: the last seen (or own)', () => {
    expect(callsInProgressFrom(3, 1, undefined)).toEqual({ known: true, count: 3 });
    expect(callsInProgressFrom(0, 2, 5)).toEqual({ known: true, count: 2 });
    expect(callsInProgressFrom(undefined, 1, 4)).toEqual({ known: false, lastSeen: 4 });
    expect(callsInProgressFrom(undefined, 2, undefined)).toEqual({ known: false, lastSeen: 2 });
  });

  it('unknown: the last count seen is the one read with the cached copy the call is decided on, as old as it', () => {
    const account = { id: 'a', enabled: true, creditBlocked: false, route: 'default', maxChannels: 2 };
    const unknown = { outcome: 'unknown' as const, cause: 'dataset-missing' as const, detail: 'no marker' };
    // The soak's case: 2 calls seen a minute ago, none when the copy was last read (a warm-up).
    expect(callsInProgressOf({ lookup: unknown, cached: { account, replica: 'r1', ageMs: 31_000, callsInProgress: 0 } }, 0)).toEqual({ known: false, lastSeen: 0 });
    expect(callsInProgressOf({ lookup: unknown, cached: { account, replica: 'r1', ageMs: 31_000, callsInProgress: 2 } }, 1)).toEqual({ known: false, lastSeen: 2 });
    expect(callsInProgressOf({ lookup: unknown, cached: { account, replica: 'r1', ageMs: 31_000 } }, 1)).toEqual({ known: false, lastSeen: 1 });
    expect(callsInProgressOf({ lookup: { outcome: 'found', account, replica: 'r1', at: 0, callsInProgress: 1 } }, 0)).toEqual({ known: true, count: 1 });
  });
});
