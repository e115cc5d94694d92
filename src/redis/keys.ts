/**
 * Every Redis key credit-edge reads or writes, in one place: the key space.
 *
 * | key                            | type   | what                                                            |
 * | ------------------------------ | ------ | --------------------------------------------------------------- |
 * | `account:{account}`            | hash   | the account: enabled, balance, rate, limits, route, blocks       |
 * | `calls:{account}`              | hash   | Call-ID -> call record (JSON), one field per call in progress    |
 * | `calls-total:{account}`        | hash   | totals of the account's call records (src/calls/totals.ts)       |
 * | `calls-setup:{account}`        | zset   | Call-ID -> expiry (ms): channels taken by calls not answered yet  |
 * | `calls-rate:{account}`         | zset   | Call-ID -> when admitted (ms): the last second's admissions       |
 * | `calls:index:accounts`         | set    | accounts that have (or just had) a `calls:{account}` hash        |
 * | `calls:index:edges`            | set    | `{node}:{instance}` of every edge process with records           |
 * | `calls:edge:{node}:{instance}` | hash   | Call-ID -> account, the records that edge process carries        |
 * | `calls:cut:{node}:{instance}`  | hash   | Call-ID -> the controller's order to end that call (JSON)        |
 * | `edge:{node}:alive`            | string | the edge process's instance id, with a TTL the edge renews       |
 * | `credit:runs-dry-at`           | zset   | accounts not blocked, with calls: score = when they run dry (ms) |
 * | `credit:blocked-runs-dry-at`   | zset   | accounts the controller blocked: same score (> now: may lift)    |
 * | `controller:blocked`           | set    | accounts the controller has blocked                              |
 * | `controller:confirm-blocks`    | string | let the blocks the breaker holds through, once                   |
 * | `controller:lease`             | string | the acting controller's name, with a TTL                         |
 * | `audit:credit`                 | stream | the audit trail (src/control/audit.ts)                           |
 * | `credit-edge:dataset`          | hash   | the dataset marker (src/accounts/dataset.ts)                     |
 * | `credit-edge:absence-hold`     | hash   | edges whose mass-absence guard is open (src/accounts/absence-hold.ts) |
 * | `credit-edge:edges`            | zset   | node -> when its presence lapses (ms): the edges sharing channel limits |
 * | `credit-edge:layout`           | string | the key layout's version (`3`), set by the controller's migration |
 *
 * **Why no account id can reach a shared key.** A per-account key is one of the prefixes
 * `account:`, `calls:`, `calls-total:`, `calls-setup:`, `calls-rate:` followed by the id, and an id never holds a colon
 * (ACCOUNT_ID_PATTERN). Every shared key under one of those prefixes holds a colon after it
 * (`calls:index:...`, `calls:edge:...`, `calls:cut:...`), and every other shared key starts otherwise. So whatever
 * the id, an account's keys are its own (test/unit/keys.test.ts checks it for every id the pattern
 * accepts). Before layout 3 the shared indexes were `calls:accounts`, `calls:edges` and
 * `calls:layout`: an account named `accounts`, `edges` or `layout` met them (LEGACY_KEYS).
 */

/** Account ids are what operators type and what goes into keys: plain, and never a colon. */
export const ACCOUNT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/;

export const ACCOUNT_KEY_PREFIX = 'account:';
export const CALLS_KEY_PREFIX = 'calls:';
export const TOTALS_PREFIX = 'calls-total:';
export const SETUP_PREFIX = 'calls-setup:';
export const RATE_PREFIX = 'calls-rate:';

export function accountKey(id: string): string {
  return ACCOUNT_KEY_PREFIX + id;
}

export function callsKey(accountId: string): string {
  return CALLS_KEY_PREFIX + accountId;
}

export function totalsKey(accountId: string): string {
  return TOTALS_PREFIX + accountId;
}

/** The calls an account was admitted in the last second (src/calls/call-rate.ts). */
export function rateKey(accountId: string): string {
  return RATE_PREFIX + accountId;
}

/** The channels an account's calls hold while they are set up (src/calls/channel-slots.ts). */
export function setupKey(accountId: string): string {
  return SETUP_PREFIX + accountId;
}

export const CALLS_INDEX_KEY = 'calls:index:accounts';
export const EDGES_KEY = 'calls:index:edges';
/** The Lua scripts derive an edge's key from the record: `EDGE_CALLS_PREFIX .. member`. */
export const EDGE_CALLS_PREFIX = 'calls:edge:';

/** `edge` is `{node}:{instance}` (edgeMember in src/calls/totals.ts). */
export function edgeCallsKey(edge: string): string {
  return EDGE_CALLS_PREFIX + edge;
}

/** An order lives as long as its call's record: the Lua step that removes the record removes it. */
export const CUT_ORDERS_PREFIX = 'calls:cut:';

/** `edge` is `{node}:{instance}`: the orders to end calls that edge process carries. */
export function cutOrdersKey(edge: string): string {
  return CUT_ORDERS_PREFIX + edge;
}

export function edgeAliveKey(node: string): string {
  return `edge:${node}:alive`;
}

export const RUNS_DRY_KEY = 'credit:runs-dry-at';
export const BLOCKED_RUNS_DRY_KEY = 'credit:blocked-runs-dry-at';
export const BLOCKED_INDEX_KEY = 'controller:blocked';
export const CONFIRM_BLOCKS_KEY = 'controller:confirm-blocks';
export const LEASE_KEY = 'controller:lease';
export const AUDIT_STREAM = 'audit:credit';
export const DATASET_KEY = 'credit-edge:dataset';
export const ABSENCE_HOLD_KEY = 'credit-edge:absence-hold';
export const EDGES_PRESENT_KEY = 'credit-edge:edges';
export const LAYOUT_KEY = 'credit-edge:layout';
/** 2: call totals and the runs-dry index; 3: the shared indexes out of the accounts' key space. */
export const LAYOUT_VERSION = '3';

/** The shared keys of layouts 1 and 2 that layout 3 renamed, and their new names (null: dropped). */
export const LEGACY_KEYS = {
  accountsWithCalls: { old: 'calls:accounts', now: CALLS_INDEX_KEY },
  edges: { old: 'calls:edges', now: EDGES_KEY },
  layout: { old: 'calls:layout', now: null },
} as const;

/** The shared keys with a fixed name (the per-edge ones are EDGE_CALLS_PREFIX, CUT_ORDERS_PREFIX and edgeAliveKey). */
export const SHARED_KEYS = [
  CALLS_INDEX_KEY,
  EDGES_KEY,
  RUNS_DRY_KEY,
  BLOCKED_RUNS_DRY_KEY,
  BLOCKED_INDEX_KEY,
  CONFIRM_BLOCKS_KEY,
  LEASE_KEY,
  AUDIT_STREAM,
  DATASET_KEY,
  ABSENCE_HOLD_KEY,
  EDGES_PRESENT_KEY,
  LAYOUT_KEY,
] as const;

/**
 * The account a key belongs to, and whether it is its hash (the visit that counts) or its records
 * or totals (visited only when the account hash is gone: calls of an account that does not exist).
 * `expires`: a key that lapses by itself (channel slots, the call-rate window): the sweep leaves
 * it alone. A shared key belongs to none: what follows its prefix holds a colon, which no id does.
 */
export function accountOfKey(key: string): { id: string; orphan: boolean; expires?: true } | undefined {
  let id: string | undefined;
  let orphan = true;
  let expires = false;
  if (key.startsWith(ACCOUNT_KEY_PREFIX)) {
    id = key.slice(ACCOUNT_KEY_PREFIX.length);
    orphan = false;
  } else if (key.startsWith(TOTALS_PREFIX)) id = key.slice(TOTALS_PREFIX.length);
  else if (key.startsWith(SETUP_PREFIX) || key.startsWith(RATE_PREFIX)) {
    id = key.slice(key.indexOf(':') + 1);
    expires = true;
  } else if (key.startsWith(CALLS_KEY_PREFIX)) id = key.slice(CALLS_KEY_PREFIX.length);
  if (id === undefined || !ACCOUNT_ID_PATTERN.test(id)) return undefined;
  return expires ? { id, orphan, expires } : { id, orphan };
}
