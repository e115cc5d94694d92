import { MASTER_NOW_MS_LUA } from '../redis/master-clock.js';

/**
 * The dataset marker: one hash on the master, `credit-edge:dataset`, that exists in every real
 * dataset and in no empty one. A replica in sync can be in sync with *nothing*: a master restarted
 * without its data, or a FLUSHALL, leaves every replica "connected" and answering nil for every
 * key. Without the marker a reader cannot tell that from a real "no such account".
 *
 * | field                  | written by                                   | meaning                                   |
 * | ---------------------- | -------------------------------------------- | ----------------------------------------- |
 * | `id`                   | `credit-edge dataset init`, the dev seed      | random id of this dataset                 |
 * | `created_at`           | same (the master's clock, ms)                 | when the dataset was declared             |
 * | `created_by`           | same                                         | who declared it                           |
 * | `accounts`             | same                                         | account keys on the master at that moment |
 * | `accepted_at`          | `credit-edge dataset accept`                  | an operator vouched for this dataset      |
 * | `deletions_accepted`   | `credit-edge dataset accept-deletions`        | a counter: each increment releases the edges' mass-absence guard |
 *
 * The marker is created only by an explicit operator step, never as a side effect of a write:
 * creating it on a master that just lost its data is exactly the mistake it exists to catch.
 */

/** The fields the edge reads with every lookup (HMGET, in the lookup's MULTI), in this order. */
export const DATASET_READ_FIELDS = ['id', 'created_at', 'accepted_at', 'deletions_accepted'] as const;

export interface DatasetMarker {
  id: string;
  /** ms since epoch, the master's clock; 0 when it does not parse. */
  createdAt: number;
  /** ms since epoch, the master's clock; 0 when never accepted. */
  acceptedAt: number;
  /** How many times deletions were accepted (0 when never). */
  deletionsAccepted: number;
}

/** The marker from an HMGET of DATASET_READ_FIELDS; undefined when there is none (no id). */
export function parseDatasetMarker(values: readonly (string | null)[]): DatasetMarker | undefined {
  const [id, createdAt, acceptedAt, deletionsAccepted] = values;
  if (!id) return undefined;
  return { id, createdAt: count(createdAt), acceptedAt: count(acceptedAt), deletionsAccepted: count(deletionsAccepted) };
}

function count(raw: string | null | undefined): number {
  const n = Number(raw ?? 0);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

const MASTER_NOW_MS = `${MASTER_NOW_MS_LUA}
local now = tostring(now_ms)`;

/**
 * Lua: creates the marker only when there is none. KEYS[1]=DATASET_KEY; ARGV[1]=id, ARGV[2]=who,
 * ARGV[3]=account count. Returns 1 when created, 0 when a marker was already there. created_at is
 * the master's clock, so that edges compare it with one clock for the whole fleet.
 */
export const CREATE_DATASET_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
${MASTER_NOW_MS}
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'created_at', now, 'created_by', ARGV[2], 'accounts', ARGV[3])
return 1`;

/** Lua: an operator vouches for the dataset (edges that called it changed adopt it). KEYS[1]=DATASET_KEY, ARGV[1]=who. */
export const ACCEPT_DATASET_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
${MASTER_NOW_MS}
redis.call('HSET', KEYS[1], 'accepted_at', now, 'accepted_by', ARGV[1])
return 1`;

/** Lua: an operator accepts the deletions the edges' mass-absence guards hold back. KEYS[1]=DATASET_KEY, ARGV[1]=who. */
export const ACCEPT_DELETIONS_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
${MASTER_NOW_MS}
redis.call('HSET', KEYS[1], 'deletions_accepted_at', now, 'deletions_accepted_by', ARGV[1])
return redis.call('HINCRBY', KEYS[1], 'deletions_accepted', 1)`;
