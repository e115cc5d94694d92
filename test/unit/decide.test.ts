import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Account } from '../../src/accounts/account.js';
import type { CachedAccount, Found, Lookup, UnknownCause } from '../../src/accounts/lookup.js';
import { decide, overloadRejection, type CallsInProgress } from '../../src/policy/decide.js';
import { DEFAULT_RULES, type Rules } from '../../src/policy/rules.js';

const rules: Rules = { ...DEFAULT_RULES, maxStaleMs: 60_000, routes: { default: ['sip:carrier-a:5060', 'sip:carrier-b:5060'] } };
const good: Account = { id: 'acct-ok', enabled: true, creditBlocked: false, balance: 10, rate: 0.01, maxChannels: 5, route: 'default' };
const found = (account: Account): Lookup => ({ outcome: 'found', account, replica: 'replica-1', at: 0 });
const unknown = (cause: UnknownCause = 'timeout'): Lookup => ({ outcome: 'unknown', cause, detail: 'test' });
const idle: CallsInProgress = { known: true, count: 0 };
const UNKNOWN_CAUSES: UnknownCause[] = [
  'timeout',
  'error',
  'loading',
  'masterdown',
  'not-in-sync',
  'no-healthy-replica',
  'bad-value',
  'dataset-missing',
  'dataset-changed',
  'absence-unconfirmed',
  'mass-absence',
];

describe('the decision table (brief: the response table)', () => {
  it('routes a found, enabled account with credit under its channel limit to its route group, in order', () => {
    const d = decide({ lookup: found(good), callsInProgress: { known: true, count: 4 } }, rules);
    expect(d).toMatchObject({ action: 'route', routeGroup: 'default', targets: ['sip:carrier-a:5060', 'sip:carrier-b:5060'] });
    expect(d.basis).toEqual({ source: 'replica', replica: 'replica-1' });
  });

  it('says when the answer came from the local copy of a replica (no round trip)', () => {
    const d = decide({ lookup: { ...(found(good) as Found), fromLocalCopy: true }, callsInProgress: idle }, rules);
    expect(d).toMatchObject({ action: 'route', basis: { source: 'replica', replica: 'replica-1', localCopy: true } });
  });

  it('answers 403 Account Not Enabled with a Q.850 Reason for a disabled account', () => {
    const d = decide({ lookup: found({ ...good, enabled: false }), callsInProgress: idle }, rules);
    expect(d).toMatchObject({ action: 'reject', verdict: 'account-disabled', status: 403, phrase: 'Account Not Enabled' });
    expect(d.action === 'reject' && d.reason).toBe('Q.850;cause=21;text="account not enabled"');
    expect(d.action === 'reject' && d.retryAfter).toBeUndefined();
  });

  it('answers 403 Out Of Call Credit for a credit-blocked account', () => {
    const d = decide({ lookup: found({ ...good, creditBlocked: true }), callsInProgress: idle }, rules);
    expect(d).toMatchObject({ action: 'reject', verdict: 'out-of-credit', status: 403, phrase: 'Out Of Call Credit' });
    expect(d.action === 'reject' && d.reason).toBe('Q.850;cause=52;text="out of call credit"');
  });

  it.each([0, -0.5])('answers 403 Out Of Call Credit when the balance is exhausted (%s)', (balance) => {
    const d = decide({ lookup: found({ ...good, balance }), callsInProgress: idle }, rules);
    expect(d).toMatchObject({ action: 'reject', verdict: 'out-of-credit', status: 403 });
  });

  it('routes an account that is not credit-limited (no balance field)', () => {
    const { balance: _none, ...postpaid } = good;
    expect(decide({ lookup: found(postpaid), callsInProgress: idle }, rules).action).toBe('route');
  });

  it('says disabled before out of credit, and out of credit before the channel limit', () => {
    const all: Account = { ...good, enabled: false, creditBlocked: true, maxChannels: 0 };
    expect(decide({ lookup: found(all), callsInProgress: idle }, rules)).toMatchObject({ verdict: 'account-disabled' });
    expect(decide({ lookup: found({ ...all, enabled: true }), callsInProgress: idle }, rules)).toMatchObject({ verdict: 'out-of-credit' });
  });

  it('answers 403 Channel Limit Reached when calls in progress are at the limit', () => {
    const d = decide({ lookup: found(good), callsInProgress: { known: true, count: 5 } }, rules);
    expect(d).toMatchObject({ action: 'reject', verdict: 'channel-limit', status: 403, phrase: 'Channel Limit Reached' });
    expect(d.action === 'reject' && d.reason).toBe('Q.850;cause=34;text="channel limit reached"');
  });

  it('treats max_channels 0 as no call allowed, and no max_channels as no limit', () => {
    expect(decide({ lookup: found({ ...good, maxChannels: 0 }), callsInProgress: idle }, rules)).toMatchObject({ verdict: 'channel-limit' });
    const { maxChannels: _none, ...unlimited } = good;
    expect(decide({ lookup: found(unlimited), callsInProgress: { known: true, count: 10_000 } }, rules).action).toBe('route');
  });

  it('answers 403 Forbidden for an authoritative nil (absent)', () => {
    const d = decide({ lookup: { outcome: 'absent', replica: 'replica-2' }, callsInProgress: idle }, rules);
    expect(d).toMatchObject({ action: 'reject', verdict: 'unknown-account', status: 403, phrase: 'Forbidden' });
    expect(d.basis).toEqual({ source: 'replica', replica: 'replica-2' });
  });

  it('an absence answered by the local copy is the same 403, and its basis says local copy', () => {
    const d = decide({ lookup: { outcome: 'absent', replica: 'replica-2', fromLocalCopy: true }, callsInProgress: idle }, rules);
    expect(d).toMatchObject({ action: 'reject', verdict: 'unknown-account', status: 403, phrase: 'Forbidden' });
    expect(d.basis).toEqual({ source: 'replica', replica: 'replica-2', localCopy: true });
  });

  it.each(UNKNOWN_CAUSES)('answers 503 + Retry-After + Reason naming the cause when unknown (%s) and nothing is cached', (cause) => {
    const d = decide({ lookup: unknown(cause), callsInProgress: idle }, rules);
    expect(d).toMatchObject({ action: 'reject', verdict: 'state-unknown', status: 503, phrase: 'Service Unavailable', retryAfter: 5 });
    expect(d.action === 'reject' && d.reason).toBe(`Q.850;cause=41;text="account state unknown: ${cause}"`);
  });

  it('decides from a cached copy younger than max-stale when unknown, and says so', () => {
    const cached: CachedAccount = { account: good, replica: 'replica-1', ageMs: 59_999 };
    const d = decide({ lookup: unknown('loading'), cached, callsInProgress: idle }, rules);
    expect(d.action).toBe('route');
    expect(d.basis).toEqual({ source: 'cache', replica: 'replica-1', ageMs: 59_999, because: 'loading' });
  });

  it('decides a 403 from a cached negative copy: the last known truth', () => {
    const cached: CachedAccount = { account: { ...good, enabled: false }, replica: 'replica-1', ageMs: 1000 };
    expect(decide({ lookup: unknown(), cached, callsInProgress: idle }, rules)).toMatchObject({ verdict: 'account-disabled', basis: { source: 'cache' } });
  });

  it('answers 503 when the cached copy is older than max-stale', () => {
    const cached: CachedAccount = { account: good, replica: 'replica-1', ageMs: 60_001 };
    expect(decide({ lookup: unknown(), cached, callsInProgress: idle }, rules)).toMatchObject({ verdict: 'state-unknown', status: 503 });
  });

  it('ignores the cached copy when a replica answered', () => {
    const cached: CachedAccount = { account: good, replica: 'replica-1', ageMs: 0 };
    expect(decide({ lookup: found({ ...good, enabled: false }), cached, callsInProgress: idle }, rules)).toMatchObject({ verdict: 'account-disabled' });
    expect(decide({ lookup: { outcome: 'absent', replica: 'r' }, cached, callsInProgress: idle }, rules)).toMatchObject({ verdict: 'unknown-account' });
  });

  it('answers 503 (not 403) when the account route group has no targets', () => {
    const d = decide({ lookup: found({ ...good, route: 'nowhere' }), callsInProgress: idle }, rules);
    expect(d).toMatchObject({ action: 'reject', verdict: 'no-route', status: 503, retryAfter: 5 });
  });

  it('answers 503 + Retry-After for overload', () => {
    expect(overloadRejection(rules)).toMatchObject({ verdict: 'overloaded', status: 503, phrase: 'Service Unavailable', retryAfter: 2 });
  });

  describe('channel limit when calls in progress cannot be read', () => {
    const limited: Account = { ...good, maxChannels: 2 };
    const withPolicy = (channelFailPolicy: Rules['channelFailPolicy']) => ({ ...rules, channelFailPolicy });
    it('last-seen (default): holds the limit against the last count seen', () => {
      expect(decide({ lookup: found(limited), callsInProgress: { known: false, lastSeen: 1 } }, withPolicy('last-seen')).action).toBe('route');
      expect(decide({ lookup: found(limited), callsInProgress: { known: false, lastSeen: 2 } }, withPolicy('last-seen'))).toMatchObject({ verdict: 'channel-limit' });
      expect(decide({ lookup: found(limited), callsInProgress: { known: false } }, withPolicy('last-seen')).action).toBe('route');
    });
    it('allow and reject do as they say', () => {
      expect(decide({ lookup: found(limited), callsInProgress: { known: false, lastSeen: 9 } }, withPolicy('allow')).action).toBe('route');
      expect(decide({ lookup: found(limited), callsInProgress: { known: false, lastSeen: 0 } }, withPolicy('reject'))).toMatchObject({ verdict: 'channel-limit' });
    });
  });

  it('takes phrases, causes and Retry-After from the rules (per deployment)', () => {
    const custom: Rules = {
      ...rules,
      rejections: { ...rules.rejections, 'out-of-credit': { status: 402, phrase: 'Payment Required', q850: 21 }, 'state-unknown': { status: 503, phrase: 'Try Later', q850: 38, retryAfter: 30 } },
    };
    expect(decide({ lookup: found({ ...good, balance: 0 }), callsInProgress: idle }, custom)).toMatchObject({ status: 402, phrase: 'Payment Required', reason: 'Q.850;cause=21;text="out of call credit"' });
    expect(decide({ lookup: unknown(), callsInProgress: idle }, custom)).toMatchObject({ status: 503, phrase: 'Try Later', retryAfter: 30 });
  });
});

describe('property: unknown never becomes a 403 (the incident)', () => {
  const accountArb = fc.record({
    id: fc.constant('a'),
    enabled: fc.boolean(),
    creditBlocked: fc.boolean(),
    balance: fc.option(fc.double({ min: -100, max: 100, noNaN: true }), { nil: undefined }),
    maxChannels: fc.option(fc.nat(10), { nil: undefined }),
    route: fc.constantFrom('default', 'nowhere'),
  });
  const callsArb: fc.Arbitrary<CallsInProgress> = fc.oneof(
    fc.record({ known: fc.constant(true as const), count: fc.nat(20) }),
    fc.record({ known: fc.constant(false as const), lastSeen: fc.option(fc.nat(20), { nil: undefined }) }),
  );

  it('with nothing cached, every unknown lookup answers 503 with Retry-After', () => {
    fc.assert(
      fc.property(fc.constantFrom(...UNKNOWN_CAUSES), callsArb, (cause, callsInProgress) => {
        const d = decide({ lookup: unknown(cause), callsInProgress }, rules);
        return d.action === 'reject' && d.status === 503 && d.retryAfter !== undefined;
      }),
    );
  });

  it('a 403 always stands on an authoritative answer: a replica, or a cached copy within max-stale', () => {
    fc.assert(
      fc.property(accountArb, fc.constantFrom(...UNKNOWN_CAUSES), fc.nat(120_000), callsArb, (account, cause, ageMs, callsInProgress) => {
        const d = decide({ lookup: unknown(cause), cached: { account, replica: 'r', ageMs }, callsInProgress }, rules);
        if (d.action === 'route' || d.status !== 403) return true;
        return d.basis.source === 'cache' && ageMs <= rules.maxStaleMs;
      }),
    );
  });
});
