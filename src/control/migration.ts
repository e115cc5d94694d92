import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { ACCOUNT_ID_PATTERN, BLOCKED_INDEX_KEY, CALLS_INDEX_KEY, DATASET_KEY, LAYOUT_KEY, LAYOUT_VERSION, LEGACY_KEYS } from '../redis/keys.js';
import { reconcile } from './sweep.js';

/**
 * Brings the master's keys to the current layout (src/redis/keys.ts), run by the controller before
 * it judges on a master whose layout is older, and whenever an older edge still writes the old
 * index names (a rolling upgrade):
 * - layout 3: the shared indexes leave the accounts' key space. Their members move into the new
 *   names and the old keys go, in one atomic step. A hash under an old name is an account's calls
 *   (an account named `accounts`, `edges` or `layout`) and is left alone.
 * - layout 2 (from 1): per-account call totals, the per-edge lists and the runs-dry index, built
 *   from the records of every account with calls or with a block of ours.
 * Nothing is written without the dataset marker (done: false).
 */

/** KEYS: dataset marker, then each old/new pair, then the old layout key. Returns {moved, old layout}. */
const MOVE_LEGACY_LUA = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local moved = 0
for i = 2, 4, 2 do
  if redis.call('TYPE', KEYS[i]).ok == 'set' then
    moved = moved + redis.call('SCARD', KEYS[i])
    redis.call('SUNIONSTORE', KEYS[i + 1], KEYS[i + 1], KEYS[i])
    redis.call('DEL', KEYS[i])
  end
end
local layout = false
if redis.call('TYPE', KEYS[6]).ok == 'string' then
  layout = redis.call('GET', KEYS[6])
  redis.call('DEL', KEYS[6])
end
return {moved, layout}
`;

const { accountsWithCalls, edges, layout: legacyLayout } = LEGACY_KEYS;

export interface Migration {
  done: boolean;
  /** Index members moved from the old names. */
  moved: number;
  /** Accounts and calls whose totals were built from the records (from layout 1). */
  accounts: number;
  calls: number;
}

/** `layout`: LAYOUT_KEY as the round read it (null before layout 3). */
export async function migrateLayout(client: Redis, layout: string | null, logger: Logger): Promise<Migration> {
  const started = Date.now();
  const result = (await client.eval(MOVE_LEGACY_LUA, 6, DATASET_KEY, accountsWithCalls.old, accountsWithCalls.now, edges.old, edges.now, legacyLayout.old)) as [number, string | null] | null;
  if (result === null) return { done: false, moved: 0, accounts: 0, calls: 0 };
  const [moved, oldLayout] = result;
  if (layout === LAYOUT_VERSION) {
    logger.warn({ moved }, 'migration: an edge of an older version still writes the old index names; its entries were moved (upgrade every edge)');
    return { done: true, moved, accounts: 0, calls: 0 };
  }

  let accounts = 0;
  let calls = 0;
  if (oldLayout !== '2') {
    const [withCalls, blocked] = await Promise.all([client.smembers(CALLS_INDEX_KEY), client.smembers(BLOCKED_INDEX_KEY)]);
    const ids = [...new Set([...withCalls, ...blocked])].filter((id) => ACCOUNT_ID_PATTERN.test(id));
    for (let i = 0; i < ids.length; i += 500) {
      const rebuilt = await reconcile(client, ids.slice(i, i + 500), true);
      if (rebuilt.noDataset) return { done: false, moved, accounts, calls };
      accounts += rebuilt.accounts;
      calls += rebuilt.calls;
    }
  }
  await client.set(LAYOUT_KEY, LAYOUT_VERSION);
  logger.warn(
    { from: oldLayout ?? '1', to: LAYOUT_VERSION, moved, accounts, calls, ms: Date.now() - started },
    oldLayout === '2'
      ? 'migration: moved the shared indexes out of the accounts\' key space (once)'
      : 'migration: built per-account call totals and the runs-dry index from the records of the older layout, and moved the shared indexes (once)',
  );
  return { done: true, moved, accounts, calls };
}
