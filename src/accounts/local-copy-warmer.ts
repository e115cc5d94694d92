import type { Logger } from '../log.js';
import { BadAccountValue } from './account.js';
import { DATASET_READ_FIELDS } from './dataset.js';
import type { DatasetWatch } from './dataset-watch.js';
import type { LocalCopy } from './local-copy.js';
import type { Replica } from './replica.js';
import type { ReplicaPool } from './replica-pool.js';
import { channelsOf, foundIn, proofProblem, readChannels } from './reader.js';
import type { StaleCache } from './stale-cache.js';
import type { ReadTicket } from './tracking.js';
import { ACCOUNT_KEY_PREFIX, accountKey, DATASET_KEY } from '../redis/keys.js';

/** Account keys read per round trip while warming: small, so live lookups on the same connection barely wait. */
const BATCH = 100;
/** Replies per account in a batch: its hash, then readChannels' two. */
const PER_ACCOUNT = 3;

/**
 * Fills the local copy from each replica ahead of the calls, so that even an account called once
 * an hour is decided from memory: whenever a replica's copies were voided (a reconnect, a resync,
 * a flush) and every half `maxAgeMs` (the copies' safety-net age). Each batch is read like a
 * lookup, with its proof: ROLE and the dataset marker in the same MULTI as the accounts, so a
 * replica not in sync, or serving another dataset, fills nothing. Tracked like any read: a change
 * afterwards invalidates the copy as usual.
 *
 * What it kept also goes into the stale cache, as a lookup's answer would: the edge then holds a
 * proven state of every account, not only of those called lately, so a lost dataset or a crowd of
 * deletions finds them cached (served from the cache, held by the mass-absence guard) instead of
 * answering 403 Forbidden to accounts it had simply not been asked about yet.
 */
export class LocalCopyWarmer {
  private timer: NodeJS.Timeout | undefined;
  /** replica -> the tracking epoch, dataset and time of its last complete warm-up. */
  private readonly warmed = new Map<Replica, { epoch: number; dataset: string | undefined; at: number }>();
  private readonly running = new Set<Replica>();

  constructor(
    private readonly pool: ReplicaPool,
    private readonly copy: LocalCopy,
    private readonly cache: StaleCache,
    private readonly dataset: DatasetWatch,
    private readonly o: { maxEntries: number; checkEveryMs: number; logger: Logger },
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      for (const replica of this.pool.replicas) if (this.due(replica, Date.now())) void this.warm(replica);
    }, this.o.checkEveryMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private due(replica: Replica, now: number): boolean {
    const tracking = replica.tracking;
    if (!tracking?.active || !replica.inSync || this.running.has(replica)) return false;
    const last = this.warmed.get(replica);
    // A dataset first seen or replaced (an edge started before the accounts were provisioned, a
    // re-provisioning after a loss) is warmed at once, not at the next half max-age.
    return !last || last.epoch !== tracking.epoch || last.dataset !== this.dataset.id || now - last.at > this.copy.maxAgeMs / 2;
  }

  /** Reads every account key of one replica into the local copy; resolves with how many were kept. */
  async warm(replica: Replica): Promise<number> {
    const tracking = replica.tracking;
    if (!tracking) return 0;
    this.running.add(replica);
    const epoch = tracking.epoch;
    const started = Date.now();
    let kept = 0;
    try {
      let cursor = '0';
      do {
        const [next, keys] = await replica.client.scan(cursor, 'MATCH', `${ACCOUNT_KEY_PREFIX}*`, 'COUNT', BATCH);
        cursor = next;
        const ids = keys.map((key) => key.slice(ACCOUNT_KEY_PREFIX.length));
        if (ids.length > 0) kept += await this.warmBatch(replica, ids);
        if (tracking.epoch !== epoch || kept >= this.o.maxEntries) return kept;
      } while (cursor !== '0');
      // The dataset its reads were proven against (a first warm-up may be what first saw it).
      this.warmed.set(replica, { epoch, dataset: this.dataset.id, at: started });
      this.o.logger.info({ replica: replica.name, accounts: kept, ms: Date.now() - started }, 'local copy warmed');
      return kept;
    } catch (err) {
      this.o.logger.warn({ replica: replica.name, err: (err as Error).message }, 'local copy not warmed; calls read the replica meanwhile');
      return kept;
    } finally {
      this.running.delete(replica);
    }
  }

  private async warmBatch(replica: Replica, ids: string[]): Promise<number> {
    const tracking = replica.tracking!;
    const tickets = new Map<string, ReadTicket>(ids.map((id) => [id, tracking.beginRead(id)]));
    const tx = replica.client.multi().role().hmget(DATASET_KEY, ...DATASET_READ_FIELDS);
    for (const id of ids) readChannels(tx.hgetall(accountKey(id)), id);
    const replies = ((await tx.exec()) ?? []) as [Error | null, unknown][];
    if (replies.length !== 2 + PER_ACCOUNT * ids.length) return 0;
    const [[roleError, role], [markerError, marker]] = replies as [[Error | null, unknown], [Error | null, unknown]];
    if (roleError || markerError) return 0;
    if (proofProblem(replica, role, marker as (string | null)[], this.dataset)) return 0;
    const at = Date.now();
    let kept = 0;
    ids.forEach((id, i) => {
      const at0 = 2 + PER_ACCOUNT * i;
      const [hashError, fields] = replies[at0]!;
      if (hashError || Object.keys(fields as object).length === 0) return;
      try {
        const found = foundIn(replica, id, fields as Record<string, string>, channelsOf(replies[at0 + 1]!, replies[at0 + 2]!), at);
        // Kept: no change arrived since the read began, so the state is current for the cache too.
        if (this.copy.keep(found, replica, tickets.get(id)!)) {
          this.cache.remember(found);
          kept++;
        }
      } catch (err) {
        // A value that does not parse stays out: the next call reads it and gets *unknown*.
        if (!(err instanceof BadAccountValue)) throw err;
      }
    });
    return kept;
  }
}
