import type { AbsenceGuard } from './absence-guard.js';
import type { AbsenceProbe } from './absence-probe.js';
import type { CachedAccount, Lookup } from './lookup.js';
import type { AccountReader } from './reader.js';
import type { StaleCache } from './stale-cache.js';

/** An account's state as the decision table takes it: the lookup, and the cached copy if unknown. */
export interface AccountState {
  lookup: Lookup;
  cached?: CachedAccount;
}

/** Where an account's state comes from: the replicas, the stale cache, and the mass-absence guard. */
export interface AccountSources {
  reader: AccountReader;
  cache: StaleCache;
  guard: AbsenceGuard;
  /** Asks whether a recently found account that reads absent is alone (optional: tests without it). */
  probe?: AbsenceProbe;
}

/**
 * The account's state, and the stale cache kept in step with what was read. When the local copy
 * can decide (the common case) the state is returned at once, so the INVITE is decided in the
 * same turn of the event loop it arrived in; otherwise a promise of it, read from the replicas.
 * An *absent* goes past the mass-absence guard first, which may hold it as *unknown*: then the
 * cache keeps its copy and may answer.
 */
export function readAccountState(sources: AccountSources, accountId: string): AccountState | Promise<AccountState> {
  const local = sources.reader.localLookup(accountId);
  if (local) return stateAfter(sources, accountId, local);
  return sources.reader.read(accountId).then((lookup) => stateAfter(sources, accountId, lookup));
}

function stateAfter({ cache, guard, probe }: AccountSources, accountId: string, lookup: Lookup): AccountState {
  switch (lookup.outcome) {
    case 'found':
      cache.remember(lookup);
      guard.found(accountId, lookup.at);
      return { lookup };
    case 'absent': {
      const now = Date.now();
      const cached = cache.recall(accountId, now);
      const held = guard.hold(accountId, cached, now);
      if (held?.cause === 'absence-unconfirmed') probe?.check(accountId, now);
      if (held) return cached ? { lookup: held, cached } : { lookup: held };
      cache.forget(accountId);
      return { lookup };
    }
    case 'unknown': {
      const cached = cache.recall(accountId, Date.now());
      return cached ? { lookup, cached } : { lookup };
    }
  }
}
