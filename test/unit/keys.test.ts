import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { edgeMember } from '../../src/calls/totals.js';
import {
  ACCOUNT_ID_PATTERN,
  accountKey,
  accountOfKey,
  rateKey,
  setupKey,
  callsKey,
  CUT_ORDERS_PREFIX,
  cutOrdersKey,
  EDGE_CALLS_PREFIX,
  edgeAliveKey,
  edgeCallsKey,
  LEGACY_KEYS,
  SHARED_KEYS,
  totalsKey,
} from '../../src/redis/keys.js';

/** The key space (src/redis/keys.ts): an account's keys are its own, whatever its id. */

const idChars = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-');
const alnum = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789');
/** Every id ACCOUNT_ID_PATTERN accepts, biased towards the names of the product's own keys. */
const accountId = fc.oneof(
  fc.tuple(alnum, fc.array(idChars, { maxLength: 127 })).map(([first, rest]) => first + rest.join('')),
  fc.constantFrom('accounts', 'edges', 'layout', 'index', 'edge', 'total', 'dataset', 'lease', 'blocked', 'runs-dry-at', 'credit', 'controller', 'audit'),
);
const nodeId = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
const perAccount = [accountKey, callsKey, totalsKey, setupKey, rateKey];

/** Whether `key` is one of the product's shared keys (fixed or per edge). */
function isShared(key: string): boolean {
  return (SHARED_KEYS as readonly string[]).includes(key) || key.startsWith(EDGE_CALLS_PREFIX) || key.startsWith(CUT_ORDERS_PREFIX) || /^edge:[^:]+:alive$/.test(key);
}

describe('the key space', () => {
  it('no account id the pattern accepts gives a key that is a shared one, or another account\'s', () => {
    fc.assert(
      fc.property(accountId, accountId, (a, b) => {
        expect(ACCOUNT_ID_PATTERN.test(a)).toBe(true);
        for (const key of perAccount.map((k) => k(a))) {
          expect(isShared(key), key).toBe(false);
          expect(accountOfKey(key)?.id, key).toBe(a);
          if (a !== b) expect(perAccount.map((k) => k(b))).not.toContain(key);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('no shared key, fixed or per edge, is taken for an account\'s', () => {
    for (const key of SHARED_KEYS) expect(accountOfKey(key), key).toBeUndefined();
    fc.assert(
      fc.property(nodeId, fc.uuid(), (node, instance) => {
        expect(accountOfKey(edgeCallsKey(edgeMember(node, instance)))).toBeUndefined();
        expect(accountOfKey(cutOrdersKey(edgeMember(node, instance)))).toBeUndefined();
        expect(accountOfKey(edgeAliveKey(node))).toBeUndefined();
      }),
    );
  });

  it('the sweep knows whose key it visits: the hash counts, records and totals alone are orphans', () => {
    expect(accountOfKey('account:acme')).toEqual({ id: 'acme', orphan: false });
    expect(accountOfKey('calls:acme')).toEqual({ id: 'acme', orphan: true });
    expect(accountOfKey('calls-total:acme')).toEqual({ id: 'acme', orphan: true });
    expect(accountOfKey('calls:index:accounts')).toBeUndefined();
  });

  it('the sweep leaves alone the keys that lapse by themselves: channel slots and the call-rate window', () => {
    expect(accountOfKey('calls-setup:acme')).toEqual({ id: 'acme', orphan: true, expires: true });
    expect(accountOfKey('calls-rate:acme')).toEqual({ id: 'acme', orphan: true, expires: true });
  });

  it('the old shared names are free for accounts so named; the new names are not the old ones', () => {
    for (const { old, now } of Object.values(LEGACY_KEYS)) {
      expect(callsKey(old.slice('calls:'.length))).toBe(old);
      expect(now).not.toBe(old);
    }
  });
});
