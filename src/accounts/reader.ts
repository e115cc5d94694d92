import { BadAccountValue, parseAccount } from './account.js';
import { DATASET_READ_FIELDS, parseDatasetMarker } from './dataset.js';
import type { DatasetWatch } from './dataset-watch.js';
import type { AbsentAnswer, LocalCopy } from './local-copy.js';
import type { Absent, Found, Lookup, Unknown, UnknownCause } from './lookup.js';
import { parseRoleReply } from './replication-state.js';
import type { Replica } from './replica.js';
import type { ReadTicket } from './tracking.js';
import type { ReplicaPool } from './replica-pool.js';
import type { ChainableCommander } from 'ioredis';
import { answerWithin } from '../redis/deadline.js';
import { accountKey, callsKey, DATASET_KEY, setupKey } from '../redis/keys.js';

export interface ReaderOptions {
  /** Ask the next replica when the first has not answered within this time. */
  hedgeDelayMs: number;
  /** A replica that has not answered within this time is suspect, and its read fails. */
  replicaTimeoutMs: number;
}

/** When several replicas fail, the cause reported is the most telling one. */
const CAUSE_RANK: UnknownCause[] = ['dataset-missing', 'dataset-changed', 'bad-value', 'loading', 'masterdown', 'not-in-sync', 'error', 'timeout', 'no-healthy-replica'];

/**
 * The tri-state account lookup. Each read is one round trip to one replica: MULTI, ROLE,
 * HGETALL, the channels in use (readChannels), HMGET of the dataset marker, EXEC, so the answer, the replica's
 * replication state and the dataset it serves are from the same instant. A nil (or a value) from a
 * replica that is not in sync, or whose dataset is not the one this edge reads (no marker: a lost
 * dataset), is *unknown*, not *absent*; a nil from one in sync is *absent* only if no other
 * replica in sync finds the account.
 * A slow replica is hedged: after hedgeDelayMs the next replica is asked too, first answer wins.
 */
export class AccountReader {
  constructor(
    private readonly pool: ReplicaPool,
    private options: ReaderOptions,
    private readonly dataset: DatasetWatch,
    /** When set, a valid local copy answers with no round trip; found reads fill it, and so do nils from every replica asked. */
    private readonly localCopy?: LocalCopy,
  ) {}

  /** New hedge delay and replica timeout (config reload); reads already started keep theirs. */
  setTimings(options: ReaderOptions): void {
    this.options = { ...options };
  }

  /** The account from the local copy, or read from the replicas when the copy cannot decide. */
  lookup(accountId: string): Promise<Lookup> {
    const local = this.localLookup(accountId);
    return local ? Promise.resolve(local) : this.read(accountId);
  }

  /** The local copy's answer, when it may decide now (LocalCopy.get): no round trip, no wait. */
  localLookup(accountId: string): Lookup | undefined {
    return this.localCopy?.get(accountId, Date.now(), this.pool.replicas);
  }

  /** The account read from the replicas (a found, or every replica's nil, fills the local copy). */
  read(accountId: string): Promise<Lookup> {
    const { localCopy } = this;
    const candidates = this.pool.candidates();
    if (candidates.length === 0) {
      return Promise.resolve(unknown('no-healthy-replica', this.pool.replicas.map((r) => `${r.name}: ${r.healthDetail}`).join('; ')));
    }
    const key = accountKey(accountId);
    const { hedgeDelayMs, replicaTimeoutMs } = this.options;

    return new Promise<Lookup>((resolve) => {
      const failures: Unknown[] = [];
      let absent: Absent | undefined;
      /** The nils, with their read tickets: all of them (every candidate's) may fill the local copy. */
      const nils: AbsentAnswer[] = [];
      let started = 0;
      let answered = 0;
      let finished = false;
      let hedge: NodeJS.Timeout | undefined;

      const settle = (result: Lookup) => {
        finished = true;
        clearTimeout(hedge);
        resolve(result);
      };
      // A found settles at once. A nil is also asked of the next replica: "connected" is not
      // "caught up", and a lagging replica (or one that is not what we think) must not make an
      // account absent on its own word while another replica in sync can speak.
      const onAnswer = (result: Lookup, replica: Replica, ticket: ReadTicket | undefined) => {
        if (finished) return;
        answered++;
        if (result.outcome === 'found') return settle(result);
        if (result.outcome === 'absent') {
          absent ??= result;
          if (ticket) nils.push({ replica, ticket });
        } else failures.push(result);
        if (started < candidates.length) startNext();
        else if (answered === candidates.length) {
          if (absent && failures.length === 0) localCopy?.keepAbsent(accountId, nils, candidates, Date.now());
          settle(absent ?? worst(failures));
        }
      };
      const startNext = () => {
        const replica = candidates[started++]!;
        clearTimeout(hedge);
        if (started < candidates.length) hedge = setTimeout(startNext, hedgeDelayMs);
        // Taken before the read goes out: an invalidation arriving meanwhile voids it.
        const ticket = localCopy && replica.tracking?.beginRead(accountId);
        void readFrom(replica, accountId, key, replicaTimeoutMs, this.dataset, ticket && localCopy && { localCopy, ticket }).then((result) => onAnswer(result, replica, ticket));
      };
      startNext();
    });
  }

  /**
   * Which of `accountIds` the first replica in sync does not hold: one proven read (ROLE, the
   * dataset marker and an EXISTS per account in one MULTI), for the mass-absence probe and the
   * shared hold. Undefined when no replica could say within the bound.
   */
  async findAbsent(accountIds: string[], timeoutMs = 1000): Promise<{ absent: string[]; checked: number } | undefined> {
    const replica = this.pool.candidates()[0];
    if (!replica || accountIds.length === 0) return undefined;
    const tx = replica.client.multi().role().hmget(DATASET_KEY, ...DATASET_READ_FIELDS);
    for (const id of accountIds) tx.exists(accountKey(id));
    try {
      const reply = await answerWithin(tx.exec(), timeoutMs);
      if (reply === 'late' || !reply) return undefined;
      const replies = reply as [Error | null, unknown][];
      const [[roleError, role], [markerError, marker]] = replies as [[Error | null, unknown], [Error | null, (string | null)[]]];
      if (roleError || markerError || proofProblem(replica, role, marker, this.dataset)) return undefined;
      const absent: string[] = [];
      for (const [i, [err, exists]] of replies.slice(2).entries()) {
        if (err) return undefined;
        if (exists === 0) absent.push(accountIds[i]!);
      }
      return { absent, checked: accountIds.length };
    } catch {
      return undefined;
    }
  }
}

/** One read from one replica, bounded by timeoutMs; never rejects. A found fills `copy` if its ticket is still good. */
async function readFrom(replica: Replica, accountId: string, key: string, timeoutMs: number, dataset: DatasetWatch, copy: { localCopy: LocalCopy; ticket: ReadTicket } | undefined): Promise<Lookup> {
  try {
    // The channels in use ride in the same MULTI: calls in progress for the channel limit, same instant, no extra round trip.
    const read = readChannels(replica.client.multi().role().hgetall(key), accountId).hmget(DATASET_KEY, ...DATASET_READ_FIELDS).exec();
    const reply = await answerWithin(read, timeoutMs);
    if (reply === 'late') {
      replica.setHealth('suspect', `read timed out after ${timeoutMs} ms`);
      return unknown('timeout', `${replica.name}: no answer within ${timeoutMs} ms`);
    }
    type Reply<T> = [Error | null, T];
    const [[roleError, role], [hashError, fields], recorded, settingUp, [markerError, marker]] = reply as [Reply<unknown>, Reply<Record<string, string>>, Reply<unknown>, Reply<unknown>, Reply<(string | null)[]>];
    if (roleError || hashError || markerError) return fromError(replica, (roleError ?? hashError ?? markerError)!);
    const untrusted = proofProblem(replica, role, marker, dataset);
    if (untrusted) return untrusted;
    if (Object.keys(fields).length === 0) return { outcome: 'absent', replica: replica.name };
    const found = foundIn(replica, accountId, fields, channelsOf(recorded, settingUp), Date.now());
    if (copy) copy.localCopy.keep(found, replica, copy.ticket);
    return found;
  } catch (err) {
    if (err instanceof BadAccountValue) return unknown('bad-value', `${replica.name}: account ${accountId}: ${err.message}`);
    return fromError(replica, err as Error & { previousErrors?: Error[] });
  }
}

/**
 * Why a read's answers cannot be trusted, from the ROLE and dataset marker read with them: the
 * replica is not in sync, or serves another dataset than this edge reads (or a lost one). Undefined
 * when they can. Every read (a lookup, a warm-up batch) is judged by this one rule.
 */
export function proofProblem(replica: Replica, role: unknown, marker: (string | null)[], dataset: DatasetWatch): Unknown | undefined {
  const notInSync = replica.noteReplication(parseRoleReply(role));
  if (notInSync) return unknown('not-in-sync', `${replica.name}: ${notInSync}`);
  const problem = dataset.check(replica.name, parseDatasetMarker(marker));
  if (problem) return unknown(problem, `${replica.name}: ${problem}`);
  return undefined;
}

/**
 * The channels an account has in use, for its channel limit: its records (answered calls, all
 * edges) and the slots of its calls being set up (src/calls/channel-slots.ts). Two commands, in
 * every read of an account (a lookup, a warm-up batch); channelsOf adds their replies up.
 */
export function readChannels<T extends ChainableCommander>(tx: T, accountId: string): T {
  return tx.hlen(callsKey(accountId)).zcard(setupKey(accountId)) as T;
}

/** The sum of readChannels' replies; undefined when either failed (the count is then unknown, not the account). */
export function channelsOf(...replies: [Error | null, unknown][]): number | undefined {
  let sum = 0;
  for (const [err, n] of replies) {
    if (err || typeof n !== 'number') return undefined;
    sum += n;
  }
  return sum;
}

/**
 * The account as a read found it (a non-empty hash). `calls` is the channels in use from the same
 * read (channelsOf), undefined when it failed: that leaves the count unknown, not the account. Throws
 * BadAccountValue when a field does not parse.
 */
export function foundIn(replica: Replica, accountId: string, fields: Record<string, string>, calls: number | undefined, at: number): Found {
  const found: Found = { outcome: 'found', account: parseAccount(accountId, fields), replica: replica.name, at };
  if (calls !== undefined) found.callsInProgress = calls;
  return found;
}

function fromError(replica: Replica, err: Error & { previousErrors?: Error[] }): Unknown {
  const messages = [err.message, ...(err.previousErrors ?? []).map((e) => e.message)].join(' / ');
  if (messages.includes('LOADING')) {
    replica.setHealth('not-in-sync', 'loading its dataset');
    return unknown('loading', `${replica.name}: ${messages}`);
  }
  if (messages.includes('MASTERDOWN')) {
    replica.setHealth('not-in-sync', 'link to master down (MASTERDOWN)');
    return unknown('masterdown', `${replica.name}: ${messages}`);
  }
  return unknown('error', `${replica.name}: ${messages}`);
}

function unknown(cause: UnknownCause, detail: string): Unknown {
  return { outcome: 'unknown', cause, detail };
}

function worst(failures: Unknown[]): Unknown {
  const ranked = [...failures].sort((a, b) => CAUSE_RANK.indexOf(a.cause) - CAUSE_RANK.indexOf(b.cause));
  return unknown(ranked[0]!.cause, failures.map((f) => f.detail).join('; '));
}
