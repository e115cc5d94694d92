import type { Account } from './account.js';

/**
 * The three outcomes of reading an account (the incident's rule 2). Only *found* and *absent* are
 * answers; *unknown* says why there is none and must never be read as "disabled" or "no credit".
 */
export type Lookup = Found | Absent | Unknown;

export interface Found {
  outcome: 'found';
  account: Account;
  /** The replica that answered. */
  replica: string;
  /** When the answer arrived (ms since epoch); the cache ages copies from here. */
  at: number;
  /** HLEN calls:{id} from the same read (all edges' calls in progress); undefined if it failed. */
  callsInProgress?: number;
  /** Answered by the local copy of that replica's answer (no round trip), not by a read just now. */
  fromLocalCopy?: true;
}

export interface Absent {
  outcome: 'absent';
  /** The replica that answered nil while known to be in sync with its master. */
  replica: string;
  /** Answered by the local copy: every replica asked answered nil, and none has changed since. */
  fromLocalCopy?: true;
}

export interface Unknown {
  outcome: 'unknown';
  cause: UnknownCause;
  /** For logs and the Reason header text: which replica, which field, which error. */
  detail: string;
}

export type UnknownCause =
  | 'timeout' // no replica answered within the lookup deadline
  | 'error' // a replica answered with an error or the connection failed
  | 'loading' // -LOADING: the replica is loading its dataset
  | 'masterdown' // -MASTERDOWN: the replica lost its master and serves no stale data
  | 'not-in-sync' // nil from a replica that is syncing or cut from its master
  | 'no-healthy-replica' // every replica is known unhealthy
  | 'bad-value' // the account hash holds a value that does not parse
  | 'dataset-missing' // the replica is in sync with a dataset that has no marker: lost (restarted empty, FLUSHALL)
  | 'dataset-changed' // the replica serves another dataset than the one this edge reads
  | 'absence-unconfirmed' // a recently found account reads absent: held for a moment while the guard counts
  | 'mass-absence'; // many recently found accounts turned absent at once: the mass-absence guard is open

/** A copy of an account from an earlier *found*, with its age, as the stale cache gives it back. */
export interface CachedAccount {
  account: Account;
  replica: string;
  ageMs: number;
  /** HLEN calls:{id} read with this copy (as old as it), when that read had it. */
  callsInProgress?: number;
}
