import type { AccountInput } from '../src/accounts/account.js';

/**
 * The benchmark's accounts: a realistic mix (mostly good accounts, some disabled, some out of
 * credit, some unknown to Redis altogether), and the per-call account sequence SIPp reads from its
 * injection file. Deterministic for a given seed, so two arms of a run place the same calls.
 */

export type AccountClass = 'ok' | 'disabled' | 'no-credit' | 'unknown';

/** The mix, as shares of the account population (the rest is 'ok'). */
export const ACCOUNT_MIX: Record<Exclude<AccountClass, 'ok'>, number> = { disabled: 0.1, 'no-credit': 0.1, unknown: 0.1 };

export interface AccountSet {
  /** Every account id the calls may name, in popularity order (index 0 is called most). */
  ids: string[];
  classOf: Map<string, AccountClass>;
  /** What to write to Redis ('unknown' accounts are left out: an authoritative nil). */
  seed: Record<string, AccountInput>;
}

/** mulberry32: a small seeded PRNG, so runs are repeatable. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeAccounts(count: number, seed = 7): AccountSet {
  const rand = prng(seed);
  const ids: string[] = [];
  const classOf = new Map<string, AccountClass>();
  const accounts: Record<string, AccountInput> = {};
  for (let i = 0; i < count; i++) {
    const id = `bench-${String(i).padStart(6, '0')}`;
    const u = rand();
    const cls: AccountClass =
      u < ACCOUNT_MIX.disabled ? 'disabled' : u < ACCOUNT_MIX.disabled + ACCOUNT_MIX['no-credit'] ? 'no-credit' : u < ACCOUNT_MIX.disabled + ACCOUNT_MIX['no-credit'] + ACCOUNT_MIX.unknown ? 'unknown' : 'ok';
    ids.push(id);
    classOf.set(id, cls);
    switch (cls) {
      case 'ok':
        accounts[id] = { enabled: true, balance: (10 + rand() * 990).toFixed(2), rate: '0.012' };
        break;
      case 'disabled':
        accounts[id] = { enabled: false, balance: '50.00', rate: '0.012' };
        break;
      case 'no-credit':
        // Both ways an account is out of credit: an exhausted balance, and a controller block.
        accounts[id] = rand() < 0.5 ? { enabled: true, balance: '0.00', rate: '0.012' } : { enabled: true, balance: '5.00', credit_blocked: true, credit_block_reason: 'bench' };
        break;
      case 'unknown':
        break;
    }
  }
  return { ids, classOf, seed: accounts };
}

/**
 * The account of each call, skewed like real traffic (a few accounts place most calls): index =
 * floor(n * u^3). A third of the calls go to the most popular ~3% of accounts.
 */
export function callSequence(set: AccountSet, calls: number, seed: number): string[] {
  const rand = prng(seed);
  const n = set.ids.length;
  const out: string[] = [];
  for (let i = 0; i < calls; i++) out.push(set.ids[Math.min(n - 1, Math.floor(n * rand() ** 3))]!);
  return out;
}
