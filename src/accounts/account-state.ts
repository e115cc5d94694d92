import type { CachedAccount, Lookup } from './lookup.js';
import type { AccountReader } from './reader.js';
import type { StaleCache } from './stale-cache.js';

/** An account's state as the decision table takes it: the lookup, and the cached copy if unknown. */
export interface AccountState {
  lookup: Lookup;
  cached?: CachedAccount;
}

/** Reads an account from the replicas and keeps the stale cache in step with what was read. */
export async function readAccountState(reader: AccountReader, cache: StaleCache, accountId: string): Promise<AccountState> {
  const lookup = await reader.lookup(accountId);
  switch (lookup.outcome) {
    case 'found':
      cache.remember(lookup);
      return { lookup };
    case 'absent':
      cache.forget(accountId);
      return { lookup };
    case 'unknown': {
      const cached = cache.recall(accountId, Date.now());
      return cached ? { lookup, cached } : { lookup };
    }
  }
}
