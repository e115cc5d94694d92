/**
 * Per-account totals of the calls in progress, and the index of when each account runs dry: what
 * lets the credit controller judge an account with arithmetic on one small hash instead of reading
 * every call record, and find the accounts to act on with one range query instead of a scan.
 *
 * Keys (src/redis/keys.ts): `calls-total:{account}` (the totals, fields below),
 * `credit:runs-dry-at` and `credit:blocked-runs-dry-at` (the index), and the per-edge index:
 * `calls:edge:{node}:{instance}` (Call-ID -> account) and `calls:index:edges` (its members).
 *
 * Totals fields: `calls` (records), `bad` (records that do not parse), `base` (ms, the first
 * record's start: keeps the sums small), `rated` (sum of the records' rates), `rated_t` (sum of
 * rate x (start - base)), `unrated` (records without a rate: the account's rate applies),
 * `unrated_t` (sum of their start - base). The cost so far of the calls at time t is
 *   (rated x (t - base) - rated_t + accountRate x (unrated x (t - base) - unrated_t)) / 60000.
 *
 * The records stay the truth: the totals change only in the same Lua step that adds or removes a
 * record, and only when it really added or removed one, so replaying an event changes nothing.
 * A totals hash that is missing while records exist is rebuilt from the records in that step.
 * The index is a hint: the controller re-reads and re-judges every account it acts on.
 */

import { accountKey, BLOCKED_RUNS_DRY_KEY, EDGE_CALLS_PREFIX, RUNS_DRY_KEY, totalsKey } from '../redis/keys.js';

/** `{node}:{instance}`: node ids have no colon (config), so the first colon splits them. */
export function edgeMember(node: string, instance: string): string {
  return `${node}:${instance}`;
}

export function splitEdgeMember(member: string): { node: string; instance: string } {
  const i = member.indexOf(':');
  return { node: member.slice(0, i), instance: member.slice(i + 1) };
}

export interface CallTotals {
  calls: number;
  bad: number;
  base: number;
  rated: number;
  ratedT: number;
  unrated: number;
  unratedT: number;
}

export const NO_CALLS: CallTotals = { calls: 0, bad: 0, base: 0, rated: 0, ratedT: 0, unrated: 0, unratedT: 0 };

/** HGETALL of a totals hash; an empty hash is no calls; undefined when a field does not parse. */
export function parseTotals(fields: Record<string, string>): CallTotals | undefined {
  if (Object.keys(fields).length === 0) return NO_CALLS;
  const n = (name: string) => Number(fields[name] ?? 'x');
  const t: CallTotals = { calls: n('calls'), bad: n('bad'), base: n('base'), rated: n('rated'), ratedT: n('rated_t'), unrated: n('unrated'), unratedT: n('unrated_t') };
  return Object.values(t).every(Number.isFinite) ? t : undefined;
}

/**
 * Lua shared by every step that changes records or what an account's index entry depends on.
 * Lua numbers go to redis.call as they are: Redis 7 writes them with 17 significant digits.
 */
export const TOTALS_LUA_LIB = `
local TOTAL_FIELDS = {'calls', 'bad', 'base', 'rated', 'rated_t', 'unrated', 'unrated_t'}
local function decode_record(raw)
  local ok, r = pcall(cjson.decode, raw)
  if not ok or type(r) ~= 'table' or type(r.start) ~= 'number' or type(r.node) ~= 'string' or type(r.instance) ~= 'string' then return nil end
  if r.rate ~= nil and (type(r.rate) ~= 'number' or r.rate < 0) then return nil end
  return r
end
local function read_totals(key)
  local v = redis.call('HMGET', key, unpack(TOTAL_FIELDS))
  if not v[1] then return nil end
  local t = {}
  for i, f in ipairs(TOTAL_FIELDS) do t[f] = tonumber(v[i]) or 0 end
  return t
end
local function new_totals(base)
  return {calls = 0, bad = 0, base = base, rated = 0, rated_t = 0, unrated = 0, unrated_t = 0}
end
local function add_record(t, r, sign)
  t.calls = t.calls + sign
  if not r then t.bad = t.bad + sign return end
  local dt = r.start - t.base
  if r.rate ~= nil then
    t.rated = t.rated + sign * r.rate
    t.rated_t = t.rated_t + sign * r.rate * dt
  else
    t.unrated = t.unrated + sign
    t.unrated_t = t.unrated_t + sign * dt
  end
end
local function write_totals(key, t)
  if t.calls <= 0 then redis.call('DEL', key) return end
  local args = {}
  for _, f in ipairs(TOTAL_FIELDS) do
    args[#args + 1] = f
    args[#args + 1] = t[f]
  end
  redis.call('HSET', key, unpack(args))
end
-- After add_record of one record r: only the fields that changed (writing numbers costs).
local function write_delta(key, t, r)
  if t.calls <= 0 then redis.call('DEL', key)
  elseif not r then redis.call('HSET', key, 'calls', t.calls, 'bad', t.bad)
  elseif r.rate ~= nil then redis.call('HSET', key, 'calls', t.calls, 'rated', t.rated, 'rated_t', t.rated_t)
  else redis.call('HSET', key, 'calls', t.calls, 'unrated', t.unrated, 'unrated_t', t.unrated_t) end
end
-- From the records themselves; with index_edges, also (re)writes the per-edge index entries.
local function sum_records(calls_key, edges_key, account, index_edges)
  local all = redis.call('HGETALL', calls_key)
  local records = {}
  local base = nil
  for i = 1, #all, 2 do
    local r = decode_record(all[i + 1])
    records[#records + 1] = r or false
    if r and (base == nil or r.start < base) then base = r.start end
    if r and index_edges then
      local member = r.node .. ':' .. r.instance
      redis.call('HSET', '${EDGE_CALLS_PREFIX}' .. member, all[i], account)
      redis.call('SADD', edges_key, member)
    end
  end
  local t = new_totals(base or 0)
  for _, r in ipairs(records) do add_record(t, r or nil, 1) end
  return t
end
-- When the account runs dry (ms), given its hash fields and totals; nil: nothing to index.
local function runs_dry_at(fields, t)
  local balance = tonumber(fields[1])
  if not balance then return nil end
  if t and t.bad > 0 then return nil end
  local rate = tonumber(fields[2])
  local unrated = t and t.unrated or 0
  if unrated > 0 and not rate then return nil end
  if not t then
    if balance <= 0 then return '-inf' end
    return '+inf'
  end
  local burn = t.rated + (unrated > 0 and rate * unrated or 0)
  local offset = t.rated_t + (unrated > 0 and rate * t.unrated_t or 0)
  if burn <= 0 then
    if balance <= 0 then return '-inf' end
    return '+inf'
  end
  return t.base + (balance * 60000 + offset) / burn
end
-- Puts the account in the right index (or none) with its runs-dry time. Returns 1 when that changed.
-- The call steps pass what they already hold (fields: HMGET of ACCOUNT_FIELDS, t: totals after the
-- change) and fast=true: write the entry without comparing, and leave the blocked index alone for
-- an account that is not blocked by the controller (the controller drops a stale entry there when
-- it reads it, and the sweep does too).
local ACCOUNT_FIELDS = {'balance', 'rate', 'credit_blocked', 'credit_blocked_by'}
local function reindex(account_key, totals_key, dry_key, blocked_key, account, fields, t, fast)
  fields = fields or redis.call('HMGET', account_key, unpack(ACCOUNT_FIELDS))
  -- t: the totals as the caller holds them; false: known to be none; nil: read them.
  if t == nil then t = read_totals(totals_key) end
  if not t or t.calls <= 0 then t = nil end
  local blocked = fields[3] == '1'
  local ours = blocked and fields[4] == 'controller'
  local dry, blocked_at = nil, nil
  if ours then
    blocked_at = runs_dry_at(fields, t)
  elseif not blocked and t then
    dry = runs_dry_at(fields, t)
  end
  local changed = 0
  local function place(key, score)
    if score == nil then
      changed = math.max(changed, redis.call('ZREM', key, account))
      return
    end
    if not fast then
      local current = redis.call('ZSCORE', key, account)
      if current then
        local x, y = tonumber(current), tonumber(score)
        -- Within a millisecond is the same entry: the sweep rewrites nothing that is right.
        if x == y or (x and y and math.abs(x - y) <= 1) then return end
      end
    end
    redis.call('ZADD', key, score, account)
    changed = 1
  end
  place(dry_key, dry)
  if ours or not fast then place(blocked_key, blocked_at) end
  return changed, (dry ~= nil or blocked_at ~= nil), fields
end
`;

/**
 * Recomputes one account's index entry from its hash and totals (top-ups, blocks and unblocks:
 * every writer of the fields the entry depends on runs it in the same MULTI).
 * KEYS[1]=account:{id} KEYS[2]=calls-total:{id} KEYS[3]=RUNS_DRY_KEY KEYS[4]=BLOCKED_RUNS_DRY_KEY; ARGV[1]=account
 */
export const REINDEX_LUA = `${TOTALS_LUA_LIB}
local changed = reindex(KEYS[1], KEYS[2], KEYS[3], KEYS[4], ARGV[1])
return changed`;

export const REINDEX_KEY_COUNT = 4;

/** Keys and arguments of REINDEX_LUA (for the reindexAccount command). */
export function reindexKeysArgs(accountId: string): string[] {
  return [accountKey(accountId), totalsKey(accountId), RUNS_DRY_KEY, BLOCKED_RUNS_DRY_KEY, accountId];
}

/** For EVAL (one-off writers: the CLI, the dev seed). */
export function reindexArgs(accountId: string, accountHashKey: string): [string, number, string, string, string, string, string] {
  return [REINDEX_LUA, REINDEX_KEY_COUNT, accountHashKey, totalsKey(accountId), RUNS_DRY_KEY, BLOCKED_RUNS_DRY_KEY, accountId];
}

/**
 * The reconciliation sweep's step for one account: totals from the records (always with full=1;
 * otherwise only when their count disagrees with the records'), then the index entry. Does
 * nothing without the dataset marker (a lost dataset is not something to reconcile).
 * KEYS[1]=calls:{id} KEYS[2]=account:{id} KEYS[3]=calls-total:{id} KEYS[4]=RUNS_DRY_KEY
 * KEYS[5]=BLOCKED_RUNS_DRY_KEY KEYS[6]=EDGES_KEY KEYS[7]=dataset marker KEYS[8]=CALLS_INDEX_KEY
 * ARGV[1]=account ARGV[2]='1' for full ARGV[3]='orphan': only when the account hash is missing
 * Returns {totals corrected 0/1, index corrected 0/1, status, calls} or {-1} without the marker;
 * status 1: indexed, 0: nothing to judge (no calls, not credit-limited, an operator's block),
 * 2: something to judge but its state does not parse (the controller reads it to say why).
 */
export const RECONCILE_KEY_COUNT = 8;

export const RECONCILE_LUA = `${TOTALS_LUA_LIB}
if not redis.call('HGET', KEYS[7], 'id') then return {-1} end
-- Visited through its records or totals key: the account hash's own visit covers it, if it has one.
if ARGV[3] == 'orphan' and redis.call('EXISTS', KEYS[2]) == 1 then return {0, 0, 0, 0} end
local stored = read_totals(KEYS[3])
local count = redis.call('HLEN', KEYS[1])
local fixed_totals = 0
local t = stored or false
if ARGV[2] == '1' or (stored and stored.calls or 0) ~= count then
  t = sum_records(KEYS[1], KEYS[6], ARGV[1], ARGV[2] == '1')
  if (stored and stored.calls or 0) ~= t.calls or (stored and stored.bad or 0) ~= t.bad or (stored and stored.unrated or 0) ~= t.unrated then
    fixed_totals = 1
  elseif stored and t.calls > 0 then
    -- Same counts: compare the cost slopes and offsets, re-based on the stored base.
    local shift = t.base - stored.base
    local function near(a, b) return math.abs(a - b) <= 1e-9 * math.max(1, math.abs(a), math.abs(b)) end
    if not near(t.rated, stored.rated) or not near(t.rated_t + t.rated * shift, stored.rated_t)
      or not near(t.unrated_t + t.unrated * shift, stored.unrated_t) then fixed_totals = 1 end
  end
  write_totals(KEYS[3], t)
end
if count > 0 then redis.call('SADD', KEYS[8], ARGV[1]) else redis.call('SREM', KEYS[8], ARGV[1]) end
local fixed_index, placed, f = reindex(KEYS[2], KEYS[3], KEYS[4], KEYS[5], ARGV[1], nil, t, false)
local status = 0
if placed then
  status = 1
else
  -- Left out of the index although it has something to judge: its state does not parse.
  local blocked = f[3] == '1'
  if (blocked and f[4] == 'controller') or (not blocked and count > 0 and (f[1] or redis.call('EXISTS', KEYS[2]) == 0)) then status = 2 end
end
return {fixed_totals, fixed_index, status, count}`;
