import { LRUCache } from 'lru-cache';
import { ACCOUNT_KEY_PREFIX } from './account.js';
import { CALLS_KEY_PREFIX } from '../calls/records.js';
import { DATASET_KEY } from './dataset.js';
import type { Found } from './lookup.js';
import type { Replica } from './replica.js';
import type { AccountInvalidation, Invalidation, ReadTicket } from './tracking.js';

export interface LocalCopyOptions {
  maxEntries: number;
  /** A copy older than this is never used (a safety net: invalidations are what keeps it right). */
  maxAgeMs: number;
  /** The replica's latest proof of being in sync (probe or read) must be younger than this. */
  proofMaxAgeMs: number;
}

interface Entry {
  found: Found;
  replica: Replica;
  epoch: number;
}

/**
 * A coherent local copy of the accounts this edge reads, kept right by the replicas themselves
 * (CLIENT TRACKING, src/accounts/tracking.ts): the gate at the cost of a memory read. A copy
 * decides a call only while all of these hold, else the call takes the read path:
 * - both connections to its replica have stayed up, and nothing flushed it, since it was read
 *   (the replica's tracking epoch is unchanged);
 * - no invalidation of its keys arrived between sending the read and keeping the answer;
 * - the replica is in sync, as proven by a probe or a read no older than `proofMaxAgeMs`;
 * - it is younger than `maxAgeMs`.
 *
 * It is not the stale cache: the stale cache answers when the replicas cannot (*unknown*), with
 * its age; a local copy is a current answer (*found*), exactly as a read would give it.
 */
export class LocalCopy {
  private readonly entries: LRUCache<string, Entry>;
  hits = 0;
  misses = 0;

  constructor(private o: LocalCopyOptions) {
    this.entries = new LRUCache<string, Entry>({ max: o.maxEntries });
  }

  setTimings(timings: Pick<LocalCopyOptions, 'maxAgeMs' | 'proofMaxAgeMs'>): void {
    this.o = { ...this.o, ...timings };
  }

  /** The account as found, if a copy may decide now; its `at` is now (it is current). */
  get(accountId: string, now: number): Found | undefined {
    const entry = this.entries.get(accountId);
    if (entry && this.usable(entry, now)) {
      this.hits++;
      return { ...entry.found, at: now, fromLocalCopy: true };
    }
    if (entry) this.entries.delete(accountId);
    this.misses++;
    return undefined;
  }

  /** A found read from `replica`: kept if nothing invalidated it while it was in flight. */
  keep(found: Found, replica: Replica, ticket: ReadTicket): boolean {
    if (!replica.tracking?.keep(found.account.id, ticket)) return false;
    this.entries.set(found.account.id, { found, replica, epoch: ticket.epoch });
    return true;
  }

  get maxAgeMs(): number {
    return this.o.maxAgeMs;
  }

  /** An invalidation from `replica`: its copy of that account goes (flushes change the epoch instead). */
  invalidate(replica: Replica, what: AccountInvalidation): void {
    const entry = this.entries.get(what.accountId);
    if (!entry || entry.replica !== replica) return;
    // Calls in progress matter only to an account with a channel limit: others keep their copy
    // through the churn of their own calls.
    if (what.key === 'calls' && entry.found.account.maxChannels === undefined) return;
    this.entries.delete(what.accountId);
  }

  get size(): number {
    return this.entries.size;
  }

  private usable(entry: Entry, now: number): boolean {
    const { replica } = entry;
    const tracking = replica.tracking;
    return (
      tracking !== undefined &&
      entry.epoch === tracking.epoch &&
      tracking.active &&
      replica.inSync &&
      now - replica.lastInSyncAt <= this.o.proofMaxAgeMs &&
      now - entry.found.at <= this.o.maxAgeMs
    );
  }
}

/** What an invalidated key means to the edge: the keys its lookup reads. */
export function invalidationOf(key: string): Invalidation | undefined {
  if (key === DATASET_KEY) return 'all';
  if (key.startsWith(ACCOUNT_KEY_PREFIX)) return { accountId: key.slice(ACCOUNT_KEY_PREFIX.length), key: 'account' };
  if (key.startsWith(CALLS_KEY_PREFIX)) return { accountId: key.slice(CALLS_KEY_PREFIX.length), key: 'calls' };
  return undefined;
}
