import { LRUCache } from 'lru-cache';
import type { Absent, Found } from './lookup.js';
import type { Replica } from './replica.js';
import type { AccountInvalidation, Invalidation, ReadTicket } from './tracking.js';
import { ACCOUNT_KEY_PREFIX, CALLS_KEY_PREFIX, DATASET_KEY, SETUP_PREFIX } from '../redis/keys.js';

export interface LocalCopyOptions {
  maxEntries: number;
  /** A copy older than this is never used (a safety net: invalidations are what keeps it right). */
  maxAgeMs: number;
  /** The replica's latest proof of being in sync (probe or read) must be younger than this. */
  proofMaxAgeMs: number;
}

/** A replica's answer kept under the tracking epoch it was read in. */
interface Source {
  replica: Replica;
  epoch: number;
}

interface FoundEntry extends Source {
  found: Found;
}

/** An absence: every replica that could be asked answered nil, each under its own tracking. */
interface AbsentEntry {
  absent: Absent;
  at: number;
  asked: Source[];
}

type Entry = FoundEntry | AbsentEntry;

/** A replica answered nil for an account; `ticket` was taken before the read went out. */
export interface AbsentAnswer {
  replica: Replica;
  ticket: ReadTicket;
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
 * An *absence* is kept too, under a stricter rule: every replica the lookup could ask answered nil
 * with nothing invalidated meanwhile, and it decides only while each of them still holds all the
 * conditions above and no other replica has become one to ask. Tracking reports a change to a key
 * that was missing when read, so an account created on the master drops it. It is an answer like
 * a read's: the mass-absence guard still judges it (src/accounts/account-state.ts).
 *
 * It is not the stale cache: the stale cache answers when the replicas cannot (*unknown*), with
 * its age; a local copy is a current answer (*found* or *absent*), exactly as a read would give it.
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

  /**
   * The account as found (its `at` is now: it is current), or its absence, if a copy may decide
   * now. `replicas`: the pool's replicas now, for an absence (none that could be asked was not).
   */
  get(accountId: string, now: number, replicas: readonly Replica[]): Found | Absent | undefined {
    const entry = this.entries.get(accountId);
    if (entry) {
      if ('found' in entry) {
        if (this.usable(entry, entry.found.at, now)) {
          this.hits++;
          const { found } = entry;
          // A literal of one shape, not a spread: on this path a spread took V8's slow way (~18 µs per call, measured).
          return { outcome: 'found', account: found.account, replica: found.replica, at: now, callsInProgress: found.callsInProgress, fromLocalCopy: true };
        }
      } else if (this.absenceUsable(entry, now, replicas)) {
        this.hits++;
        return entry.absent;
      }
      this.entries.delete(accountId);
    }
    this.misses++;
    return undefined;
  }

  /** A found read from `replica`: kept if nothing invalidated it while it was in flight. */
  keep(found: Found, replica: Replica, ticket: ReadTicket): boolean {
    if (!replica.tracking?.keep(found.account.id, ticket)) return false;
    this.entries.set(found.account.id, { found, replica, epoch: ticket.epoch });
    return true;
  }

  /**
   * An absence: kept only if `answers` holds one nil from each replica the lookup could ask
   * (`asked`), each read's ticket still good (nothing invalidated it since it was sent).
   */
  keepAbsent(accountId: string, answers: AbsentAnswer[], asked: readonly Replica[], now: number): boolean {
    if (answers.length === 0 || answers.length !== asked.length) return false;
    if (!asked.every((replica) => answers.some((a) => a.replica === replica))) return false;
    // Every ticket is checked (and so released), not only until the first that fails.
    const kept = answers.map((a) => a.replica.tracking?.keep(accountId, a.ticket) === true);
    if (kept.includes(false)) return false;
    const absent: Absent = { outcome: 'absent', replica: answers[0]!.replica.name, fromLocalCopy: true };
    this.entries.set(accountId, { absent, at: now, asked: answers.map((a) => ({ replica: a.replica, epoch: a.ticket.epoch })) });
    return true;
  }

  get maxAgeMs(): number {
    return this.o.maxAgeMs;
  }

  /** An invalidation from `replica`: its copy of that account goes (flushes change the epoch instead). */
  invalidate(replica: Replica, what: AccountInvalidation): void {
    const entry = this.entries.get(what.accountId);
    if (!entry) return;
    if (!('found' in entry)) {
      // An absence stands on the account's hash only; calls in progress do not change it.
      if (what.key === 'account' && entry.asked.some((a) => a.replica === replica)) this.entries.delete(what.accountId);
      return;
    }
    if (entry.replica !== replica) return;
    // Calls in progress matter only to an account with a channel limit: others keep their copy
    // through the churn of their own calls.
    if (what.key === 'calls' && entry.found.account.maxChannels === undefined) return;
    this.entries.delete(what.accountId);
  }

  get size(): number {
    return this.entries.size;
  }

  private usable({ replica, epoch }: Source, at: number, now: number): boolean {
    const tracking = replica.tracking;
    return (
      tracking !== undefined &&
      epoch === tracking.epoch &&
      tracking.active &&
      replica.inSync &&
      now - replica.lastInSyncAt <= this.o.proofMaxAgeMs &&
      now - at <= this.o.maxAgeMs
    );
  }

  /** Each replica asked still as it was, and no replica a lookup would ask now left unasked. */
  private absenceUsable(entry: AbsentEntry, now: number, replicas: readonly Replica[]): boolean {
    if (!entry.asked.every((source) => this.usable(source, entry.at, now))) return false;
    return replicas.every((r) => (r.health !== 'in-sync' && r.health !== 'suspect') || entry.asked.some((a) => a.replica === r));
  }
}

/** What an invalidated key means to the edge: the keys its lookup reads. */
export function invalidationOf(key: string): Invalidation | undefined {
  if (key === DATASET_KEY) return 'all';
  if (key.startsWith(ACCOUNT_KEY_PREFIX)) return { accountId: key.slice(ACCOUNT_KEY_PREFIX.length), key: 'account' };
  if (key.startsWith(CALLS_KEY_PREFIX)) return { accountId: key.slice(CALLS_KEY_PREFIX.length), key: 'calls' };
  if (key.startsWith(SETUP_PREFIX)) return { accountId: key.slice(SETUP_PREFIX.length), key: 'calls' };
  return undefined;
}
