import { MASTER_NOW_MS_LUA } from '../redis/master-clock.js';

/**
 * The calls an account was admitted in the last second, on the Redis master, so that a per-account
 * calls-per-second limit (`max_cps`) holds across edges. `calls-rate:{account}` is a sorted set:
 * Call-ID -> when it was admitted (the master's clock, ms). Every edge adds each call of a
 * rate-limited account it admits; near the limit the add is checked against the limit in the
 * same step (src/edge/rate-admission.ts). The window slides: any second, not the clock's seconds,
 * holds at most the limit (a fixed window lets twice the limit through across its boundary).
 */

export const RATE_WINDOW_MS = 1000;

/**
 * Lua, one atomic step: drops admissions older than the window, then adds the call. With
 * ARGV[3] = 'check', only while fewer than ARGV[2] calls were admitted in the window; otherwise
 * always (a call admitted from memory, well below the limit). The key lives two windows.
 * KEYS[1]=rateKey(account) ARGV[1]=Call-ID ARGV[2]=max_cps ARGV[3]='check' or ''.
 * Returns {1, admissions in the window with it} or {0, admissions in the window} when full.
 */
export const TAKE_RATE_LUA = `
${MASTER_NOW_MS_LUA}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - ${RATE_WINDOW_MS})
local count = redis.call('ZCARD', KEYS[1])
if ARGV[3] == 'check' and count >= tonumber(ARGV[2]) then return {0, count} end
if redis.call('ZADD', KEYS[1], now_ms, ARGV[1]) == 1 then count = count + 1 end
redis.call('PEXPIRE', KEYS[1], ${2 * RATE_WINDOW_MS})
return {1, count}`;

/**
 * An edge's own admissions per account in the last window (pure but for the clock it is given):
 * what it may admit from memory is bounded by these alone, so no other edge's lag matters.
 */
export class RecentAdmissions {
  private readonly byAccount = new Map<string, number[]>();

  /** Admissions of the account within the window before `now` (ms, any monotonic clock). */
  count(account: string, now: number): number {
    const times = this.byAccount.get(account);
    if (!times) return 0;
    let stale = 0;
    while (stale < times.length && times[stale]! <= now - RATE_WINDOW_MS) stale++;
    if (stale === times.length) {
      this.byAccount.delete(account);
      return 0;
    }
    if (stale > 0) times.splice(0, stale);
    return times.length;
  }

  add(account: string, now: number): void {
    const times = this.byAccount.get(account);
    if (times) times.push(now);
    else this.byAccount.set(account, [now]);
  }

  /** Takes back the admission added at `at` (a call refused after all). */
  withdraw(account: string, at: number): void {
    const times = this.byAccount.get(account);
    const i = times ? times.lastIndexOf(at) : -1;
    if (i >= 0) times!.splice(i, 1);
  }

  /** Forgets the accounts with no admission in the window before `now`: call it now and then. */
  prune(now: number): void {
    for (const [account, times] of this.byAccount) if (times[times.length - 1]! <= now - RATE_WINDOW_MS) this.byAccount.delete(account);
  }

  /** Accounts with admissions kept. */
  get accounts(): number {
    return this.byAccount.size;
  }
}
