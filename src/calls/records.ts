import type { Redis } from 'ioredis';
import { z } from 'zod';
import { edgeMember, RECONCILE_KEY_COUNT, RECONCILE_LUA, REINDEX_KEY_COUNT, REINDEX_LUA, TOTALS_LUA_LIB } from './totals.js';
import { accountKey, BLOCKED_RUNS_DRY_KEY, CALLS_INDEX_KEY, callsKey, CUT_ORDERS_PREFIX, EDGE_CALLS_PREFIX, EDGES_KEY, RUNS_DRY_KEY, setupKey, totalsKey } from '../redis/keys.js';

/**
 * Calls in progress on the Redis master: the key layout shared by the edge (writes), the edge's
 * channel-limit read (replicas), the credit controller and the CLI.
 *
 * Keys (src/redis/keys.ts): `calls:{account}` (Call-ID -> call record, JSON, one field per call
 * in progress), `calls:index:accounts` (accounts that have, or just had, such a hash) and
 * `edge:{node}:alive` (the edge process's instance id, with a TTL the edge renews).
 *
 * One record per call, not a counter, so nothing drifts: starting a call twice or ending it twice
 * leaves the same state, and the count is the hash length. The same Lua steps keep the account's
 * totals, its runs-dry index entry and the per-edge index (src/calls/totals.ts).
 */

export interface CallRecord {
  callId: string;
  account: string;
  /** When the call was answered (ms since epoch, the edge's clock). */
  start: number;
  /** The edge node (config node_id) that carries the call. */
  node: string;
  /** The edge process that carries it; a new process with the same node id is a new instance. */
  instance: string;
  /** Price per minute as the edge read it when routing; absent when the account had none. */
  rate?: number;
}

const recordSchema = z.strictObject({
  callId: z.string().min(1),
  account: z.string().min(1),
  start: z.number().int().positive(),
  node: z.string().min(1),
  instance: z.string().min(1),
  rate: z.number().nonnegative().finite().optional(),
});

export function encodeCallRecord(record: CallRecord): string {
  return JSON.stringify(record);
}

/** A record as stored, or undefined when it does not parse (the controller treats that as unknown). */
export function parseCallRecord(raw: string): CallRecord | undefined {
  try {
    const result = recordSchema.safeParse(JSON.parse(raw));
    return result.success ? (result.data as CallRecord) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Lua for the writes, so that each event is one atomic command on the master: the record, the
 * indexes of accounts and edges, the account's totals and its runs-dry entry change together.
 * Both take the keys of callKeys(); callStart (which also gives back the call's channel slot): ARGV[1]=Call-ID ARGV[2]=record ARGV[3]=account
 * ARGV[4..7]=the record's start, rate, node, instance (callStartArgs).
 * callEnd: ARGV[1]=Call-ID ARGV[2]=account ARGV[3]=when the call ended (ms since epoch), or '' when
 * not known; ARGV[4]=the record's `{node}:{instance}` when known ('' otherwise: only used to clean
 * a per-edge entry whose record is already gone).
 *
 * The per-edge key (`calls:edge:{node}:{instance}`) is derived inside the script from the record:
 * the record is what says which edge carries the call (standalone Redis through Sentinel; not
 * written for Redis Cluster).
 *
 * callStart changes nothing when the same record is already there. callEnd debits the call's cost
 * (rate x minutes from start to end) from the account's balance, in the same step that removes its
 * record: the controller projects balance minus the calls in progress, so a call's cost is counted
 * in exactly one of the two at any instant. It debits only when it removed the record (a replayed
 * end debits nothing), only when the record has a rate and the account a balance that parses, and
 * writes the balance with 6 decimals. Totals that do not match the record count after a step (a
 * record written or removed around these scripts) are rebuilt from the records in that step.
 */
export const CALL_KEY_COUNT = 8;

/** KEYS for callStart / callEnd, in order. */
export function callKeys(accountId: string): string[] {
  return [callsKey(accountId), CALLS_INDEX_KEY, accountKey(accountId), totalsKey(accountId), RUNS_DRY_KEY, BLOCKED_RUNS_DRY_KEY, EDGES_KEY, setupKey(accountId)];
}

/** ARGV[4..7] repeat the record's start, rate ('' when none), node and instance: the script adds them up without decoding the JSON. */
export function callStartArgs(record: CallRecord): string[] {
  return [...callKeys(record.account), record.callId, encodeCallRecord(record), record.account, String(record.start), record.rate === undefined ? '' : String(record.rate), record.node, record.instance];
}

/** endedAt: ms since epoch, or undefined when not known (nothing is debited). */
export function callEndArgs(accountId: string, callId: string, endedAt: number | undefined, edge?: { node: string; instance: string }): string[] {
  return [...callKeys(accountId), callId, accountId, endedAt === undefined ? '' : String(endedAt), edge ? edgeMember(edge.node, edge.instance) : ''];
}

const EDGE_INDEX_LUA = `
local function edge_add(r, call_id, account)
  if not r then return end
  local member = r.node .. ':' .. r.instance
  redis.call('HSET', '${EDGE_CALLS_PREFIX}' .. member, call_id, account)
  redis.call('SADD', KEYS[7], member)
end
-- An emptied per-edge hash disappears by itself; its member in the edges index is dropped by the
-- controller when it finds the hash empty (one command less per call end).
local function edge_remove(member, call_id)
  redis.call('HDEL', '${EDGE_CALLS_PREFIX}' .. member, call_id)
  -- An order to end the call (the controller's) goes with its record.
  redis.call('HDEL', '${CUT_ORDERS_PREFIX}' .. member, call_id)
end
-- Totals after a change of one record r: rebuilt from the records when they were missing (or the
-- change was a replacement: full), otherwise only the changed fields; then the index entry.
local function settle_totals(t, account, fields, r, full)
  if not t then
    t = sum_records(KEYS[1], KEYS[7], account, false)
    full = true
  end
  if t.calls <= 0 then redis.call('SREM', KEYS[2], account) end
  if full then write_totals(KEYS[4], t) else write_delta(KEYS[4], t, r) end
  reindex(KEYS[3], KEYS[4], KEYS[5], KEYS[6], account, fields, t, true)
end
`;

export const CALL_START_LUA = `${TOTALS_LUA_LIB}${EDGE_INDEX_LUA}
-- The record holds the call's channel from now on: its slot (src/calls/channel-slots.ts) goes in
-- the same step, so no reader ever counts the call twice.
redis.call('ZREM', KEYS[8], ARGV[1])
local old = nil
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  old = redis.call('HGET', KEYS[1], ARGV[1])
  if old == ARGV[2] then return 0 end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
-- The record's numbers, as the caller encoded them (no JSON decoding on the hot path).
local record = nil
local start = tonumber(ARGV[4])
if start then record = {start = start, rate = tonumber(ARGV[5]), node = ARGV[6], instance = ARGV[7]} end
local t = read_totals(KEYS[4])
local full = false
if old then
  local previous = decode_record(old)
  if previous then edge_remove(previous.node .. ':' .. previous.instance, ARGV[1]) end
  if t then add_record(t, previous, -1) end
  full = true
elseif not t then
  redis.call('SADD', KEYS[2], ARGV[3])
  if redis.call('HLEN', KEYS[1]) == 1 then t = new_totals(start or 0) full = true end
end
edge_add(record, ARGV[1], ARGV[3])
if t then add_record(t, record, 1) end
settle_totals(t, ARGV[3], nil, record, full)
return 1`;

export const CALL_END_LUA = `${TOTALS_LUA_LIB}${EDGE_INDEX_LUA}
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then
  if ARGV[4] ~= nil and ARGV[4] ~= '' then edge_remove(ARGV[4], ARGV[1]) end
  if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
local record = decode_record(raw)
if record then edge_remove(record.node .. ':' .. record.instance, ARGV[1]) end
local fields = redis.call('HMGET', KEYS[3], unpack(ACCOUNT_FIELDS))
local ended = tonumber(ARGV[3])
local balance = tonumber(fields[1])
if record and ended and record.rate ~= nil and balance then
  local minutes = math.max(0, ended - record.start) / 60000
  fields[1] = string.format('%.6f', balance - record.rate * minutes)
  redis.call('HSET', KEYS[3], 'balance', fields[1])
end
local t = read_totals(KEYS[4])
if t then add_record(t, record, -1) end
settle_totals(t, ARGV[2], fields, record, false)
return 1`;

/** The call scripts as commands of an ioredis client (or of its pipelines and MULTIs). */
export interface CallScripts {
  callStart(...args: string[]): Promise<number>;
  callEnd(...args: string[]): Promise<number>;
  reindexAccount(...args: string[]): Promise<number>;
  reconcileAccount(...args: string[]): Promise<number[]>;
}

/**
 * Defines the scripts on a client: sent as EVALSHA (ioredis loads them when the master lacks
 * them), so a pipeline of thousands does not resend and re-hash their text each time.
 */
export function defineCallScripts<T extends Redis>(client: T): T & CallScripts {
  const c = client as T & Partial<CallScripts>;
  if (typeof c.callStart !== 'function') {
    client.defineCommand('callStart', { numberOfKeys: CALL_KEY_COUNT, lua: CALL_START_LUA });
    client.defineCommand('callEnd', { numberOfKeys: CALL_KEY_COUNT, lua: CALL_END_LUA });
    client.defineCommand('reindexAccount', { numberOfKeys: REINDEX_KEY_COUNT, lua: REINDEX_LUA });
    client.defineCommand('reconcileAccount', { numberOfKeys: RECONCILE_KEY_COUNT, lua: RECONCILE_LUA });
  }
  return client as T & CallScripts;
}
