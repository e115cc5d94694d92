import { LRUCache } from 'lru-cache';
import type { Account } from './account.js';
import type { CachedAccount, Found } from './lookup.js';

interface Entry {
  account: Account;
  replica: string;
  at: number;
  callsInProgress?: number;
}

/**
 * The last authoritative copy of each account, for the moments when no replica can answer.
 * Every *found* is remembered (with the calls in progress read with it), an authoritative
 * *absent* forgets, and nothing else touches it: the cache can only give back the last known
 * truth, with its age, never invent one. Whether a copy is young enough to decide on is the
 * decision table's call (max-stale).
 */
export class StaleCache {
  private readonly entries: LRUCache<string, Entry>;

  constructor(options: { maxEntries: number }) {
    this.entries = new LRUCache<string, Entry>({ max: options.maxEntries });
  }

  remember(found: Found): void {
    const kept = this.entries.get(found.account.id);
    // The local copy answering again with the copy kept here: only its time moves (no new entry per call).
    if (kept && kept.account === found.account && kept.replica === found.replica && kept.callsInProgress === found.callsInProgress) {
      kept.at = found.at;
      return;
    }
    const entry: Entry = { account: found.account, replica: found.replica, at: found.at };
    if (found.callsInProgress !== undefined) entry.callsInProgress = found.callsInProgress;
    this.entries.set(found.account.id, entry);
  }

  forget(accountId: string): void {
    this.entries.delete(accountId);
  }

  recall(accountId: string, now: number): CachedAccount | undefined {
    const entry = this.entries.get(accountId);
    if (!entry) return undefined;
    const cached: CachedAccount = { account: entry.account, replica: entry.replica, ageMs: Math.max(0, now - entry.at) };
    if (entry.callsInProgress !== undefined) cached.callsInProgress = entry.callsInProgress;
    return cached;
  }

  /** Up to `n` account ids, the most recently used first, without `except`. */
  recentIds(n: number, except: string): string[] {
    const out: string[] = [];
    for (const id of this.entries.keys()) {
      if (out.length >= n) break;
      if (id !== except) out.push(id);
    }
    return out;
  }

  get size(): number {
    return this.entries.size;
  }
}
