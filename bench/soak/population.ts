import type { AccountInput } from '../../src/accounts/account.js';
import { prng } from '../accounts.js';
import type { AccountDefinition, RecordedAccount, SoakAccountKind } from './history.js';

/**
 * The soak's accounts, every kind a carrier has, and the calls placed to them. Deterministic for a
 * seed. Two call streams:
 * - short calls (hung up at once) at the soak's steady rate over every kind, skewed like real
 *   traffic (a few accounts place most calls);
 * - long calls (held `longHoldMs`) to the low-credit accounts, whose single call outlasts their
 *   credit so the controller has real blocks to make and lift, and to a few channel-limited
 *   accounts, called often enough that their limit is reached.
 */

/** Shares of the population; the rest is 'funded'. */
const SHARES: Record<Exclude<SoakAccountKind, 'funded'>, number> = {
  disabled: 0.08,
  'out-of-credit': 0.08,
  absent: 0.08,
  'low-credit': 0.04,
  'channel-limited': 0.002,
};

/** Price per minute of the low-credit accounts: 6 a minute, 0.1 a second. */
export const LOW_CREDIT_RATE = 6;
export const CHANNEL_LIMIT = 2;

export interface Population {
  accounts: AccountDefinition[];
  byId: Map<string, AccountDefinition>;
  /** The account of each short call, in order. */
  shortCalls: string[];
  /** The account of each long call, in order. */
  longCalls: string[];
}

export interface PopulationOptions {
  seed: number;
  accounts: number;
  shortCalls: number;
  longCalls: number;
  /** How long a long call is held: the low-credit balances are set against it. */
  longHoldMs: number;
}

export function makePopulation(o: PopulationOptions): Population {
  const rand = prng(o.seed);
  const accounts: AccountDefinition[] = [];
  const kinds = Object.entries(SHARES) as [SoakAccountKind, number][];
  for (let i = 0; i < o.accounts; i++) {
    const id = `soak-${String(i).padStart(5, '0')}`;
    let u = rand();
    let kind: SoakAccountKind = 'funded';
    for (const [k, share] of kinds) {
      if (u < share) {
        kind = k;
        break;
      }
      u -= share;
    }
    accounts.push({ id, kind, initial: initialState(kind, rand, o.longHoldMs) });
  }
  // At least two of the rarer kinds, whatever the size: the checker needs them present.
  for (const kind of ['low-credit', 'channel-limited'] as const) {
    const have = accounts.filter((a) => a.kind === kind).length;
    const funded = accounts.filter((a) => a.kind === 'funded');
    for (let i = have; i < 2 && funded.length > i; i++) Object.assign(funded[i]!, { kind, initial: initialState(kind, rand, o.longHoldMs) });
  }
  const ids = accounts.map((a) => a.id);
  const shortCalls: string[] = [];
  for (let i = 0; i < o.shortCalls; i++) shortCalls.push(ids[Math.min(ids.length - 1, Math.floor(ids.length * rand() ** 3))]!);
  const lowCredit = accounts.filter((a) => a.kind === 'low-credit').map((a) => a.id);
  const limited = accounts.filter((a) => a.kind === 'channel-limited').map((a) => a.id);
  const longCalls: string[] = [];
  for (let i = 0; i < o.longCalls; i++) {
    const pool = rand() < 0.5 ? limited : lowCredit;
    longCalls.push(pool[Math.floor(rand() * pool.length)]!);
  }
  return { accounts, byId: new Map(accounts.map((a) => [a.id, a])), shortCalls, longCalls };
}

function initialState(kind: SoakAccountKind, rand: () => number, longHoldMs: number): RecordedAccount | null {
  const base: RecordedAccount = { enabled: true, balance: Math.round((20 + rand() * 980) * 100) / 100, ratePerMin: 0.012, operatorBlocked: false, maxChannels: undefined };
  switch (kind) {
    case 'funded':
      return base;
    case 'disabled':
      return { ...base, enabled: false };
    case 'out-of-credit':
      return { ...base, balance: 0 };
    case 'absent':
      return null;
    case 'low-credit': {
      // One long call costs LOW_CREDIT_RATE * hold; a balance of 30-90% of that runs dry mid-call.
      const callCost = (LOW_CREDIT_RATE * longHoldMs) / 60_000;
      return { ...base, ratePerMin: LOW_CREDIT_RATE, balance: Math.round(callCost * (0.3 + rand() * 0.6) * 100) / 100 };
    }
    case 'channel-limited':
      return { ...base, maxChannels: CHANNEL_LIMIT };
  }
}

/** The hash a provisioning system writes for a recorded state (controller fields never: they are the controller's). */
export function accountInput(state: RecordedAccount): AccountInput {
  return {
    enabled: state.enabled,
    ...(state.balance !== undefined && { balance: state.balance.toFixed(2) }),
    ...(state.ratePerMin !== undefined && { rate: String(state.ratePerMin) }),
    ...(state.maxChannels !== undefined && { max_channels: state.maxChannels }),
    ...(state.operatorBlocked && { credit_blocked: true, credit_block_reason: 'operator', credit_blocked_by: 'operator' }),
  };
}
