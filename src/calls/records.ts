import { z } from 'zod';

/**
 * Calls in progress on the Redis master: the key layout shared by the edge (writes), the edge's
 * channel-limit read (replicas), the credit controller and the CLI.
 *
 * | key                  | type   | what                                                           |
 * | -------------------- | ------ | -------------------------------------------------------------- |
 * | `calls:{account}`    | hash   | Call-ID -> call record (JSON), one field per call in progress   |
 * | `calls:accounts`     | set    | accounts that have (or just had) a `calls:{account}` hash       |
 * | `edge:{node}:alive`  | string | the edge process's instance id, with a TTL the edge renews      |
 *
 * One record per call, not a counter, so nothing drifts: starting a call twice or ending it twice
 * leaves the same state, and the count is the hash length.
 */

export const CALLS_INDEX_KEY = 'calls:accounts';

export const CALLS_KEY_PREFIX = 'calls:';

export function callsKey(accountId: string): string {
  return CALLS_KEY_PREFIX + accountId;
}

export function edgeAliveKey(node: string): string {
  return `edge:${node}:alive`;
}

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
 * Lua for the writes, so that each event is one atomic command on the master and the index never
 * lists an account whose hash is gone for good.
 * callStart: KEYS[1]=calls:{account} KEYS[2]=calls:accounts ARGV[1]=Call-ID ARGV[2]=record ARGV[3]=account
 * callEnd:   KEYS[1..2] as above, KEYS[3]=account:{account}; ARGV[1]=Call-ID ARGV[2]=account
 *            ARGV[3]=when the call ended (ms since epoch), or '' when not known
 *
 * callEnd also debits the call's cost (rate x minutes from start to end) from the account's
 * balance, in the same step that removes its record: the controller projects balance minus the
 * calls in progress, so a call's cost is counted in exactly one of the two at any instant. It
 * debits only when it removed the record (a replayed end debits nothing), only when the record
 * has a rate and the account a balance that parses, and writes the balance with 6 decimals.
 */
export const CALL_START_LUA = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
return 1`;

export const CALL_END_LUA = `
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local removed = redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[2]) end
local ended = tonumber(ARGV[3])
if removed == 1 and raw and ended then
  local ok, record = pcall(cjson.decode, raw)
  if ok and type(record) == 'table' and type(record.rate) == 'number' and type(record.start) == 'number' then
    local balance = tonumber(redis.call('HGET', KEYS[3], 'balance'))
    if balance then
      local minutes = math.max(0, ended - record.start) / 60000
      redis.call('HSET', KEYS[3], 'balance', string.format('%.6f', balance - record.rate * minutes))
    end
  end
end
return removed`;
