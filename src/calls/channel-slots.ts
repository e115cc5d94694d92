import { accountKey, callsKey, setupKey } from '../redis/keys.js';
import { MASTER_NOW_MS_LUA } from '../redis/master-clock.js';

/**
 * Channels held by calls being set up, on the Redis master, so that every edge counts the calls
 * its peers have admitted but not yet answered (the records, `calls:{account}`, start at the
 * answer). `calls-setup:{account}` is a sorted set: Call-ID -> when the slot lapses (the master's
 * clock, ms). An edge takes a slot when it admits a call of an account with `max_channels`, gives
 * it back when the call is answered (its record holds the channel from then) or fails, and renews
 * the slots of its calls still ringing at every liveness renewal: the slots of an edge that died
 * lapse by themselves. The account's channel count is HLEN calls:{account} + ZCARD
 * calls-setup:{account} (lapsed slots still count until the next take removes them: never fewer).
 */

/** KEYS for takeSlot, in order. */
export function slotKeys(accountId: string): string[] {
  return [callsKey(accountId), setupKey(accountId), accountKey(accountId)];
}

export const SLOT_KEY_COUNT = 3;

/**
 * Lua, one atomic step: drops lapsed slots, then takes one for the call. With ARGV[3] = 'check'
 * only while the channels in use (records + slots) are fewer than the account's `max_channels` on
 * the master; otherwise always (a call admitted from memory, far below its limit, or a renewal).
 * An account with no hash on the master (its dataset lost, not yet re-provisioned, while the edges
 * admit from their copies) is held to the limit the edge read, ARGV[4]: the edges still count
 * each other's calls there.
 * KEYS: slotKeys(). ARGV[1]=Call-ID ARGV[2]=ttl ms ARGV[3]='check' or '' ARGV[4]=the edge's limit.
 * Returns {1, channels in use with it} when taken (or already held), {0, channels in use} when the
 * limit is reached.
 */
export const TAKE_SLOT_LUA = `
${MASTER_NOW_MS_LUA}
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_ms)
local held = redis.call('ZSCORE', KEYS[2], ARGV[1])
local count = redis.call('HLEN', KEYS[1]) + redis.call('ZCARD', KEYS[2])
if ARGV[3] == 'check' and not held then
  local limit = tonumber(ARGV[4])
  if redis.call('EXISTS', KEYS[3]) == 1 then limit = tonumber(redis.call('HGET', KEYS[3], 'max_channels')) end
  if limit and count >= limit then return {0, count} end
end
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], now_ms + ttl, ARGV[1])
redis.call('PEXPIRE', KEYS[2], ttl)
if held then return {1, count} end
return {1, count + 1}`;

/**
 * `edgeLimit`: the account's `max_channels` as the edge read it, for a take checked against the
 * limit (used only when the master has no such account); undefined: taken unchecked (a call
 * admitted from memory, or a renewal).
 */
export function takeSlotArgs(accountId: string, callId: string, ttlMs: number, edgeLimit: number | undefined): (string | number)[] {
  return [...slotKeys(accountId), callId, ttlMs, edgeLimit === undefined ? '' : 'check', edgeLimit ?? ''];
}

/**
 * Lua, one atomic step at each liveness renewal of an edge: drops the edges whose presence lapsed,
 * marks this one present until ARGV[2] ms from now (the master's clock), and returns how many
 * edges are present. An edge admits calls from memory only up to its share of an account's
 * channels (src/edge/channel-admission.ts), so every edge must count every other.
 * KEYS[1]=EDGES_PRESENT_KEY ARGV[1]=node ARGV[2]=ttl ms.
 */
export const EDGE_PRESENCE_LUA = `
${MASTER_NOW_MS_LUA}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
return redis.call('ZCARD', KEYS[1])`;
