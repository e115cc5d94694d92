import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { AbsenceGuard, PeerHold } from './absence-guard.js';
import type { DatasetWatch } from './dataset-watch.js';
import type { AccountReader } from './reader.js';
import type { ReplicaPool } from './replica-pool.js';
import { ABSENCE_HOLD_KEY, ACCOUNT_ID_PATTERN } from '../redis/keys.js';

/** How often the peers' holds are read, and this edge's own is written while its guard is open. */
const TICK_MS = 250;
/** The hold is written again this often while open: a sign of life, and against a failover that lost it ... */
const RENEW_MS = 1000;
/** ... so one not written again for this long is an orphan: its edge process is gone. */
const ORPHAN_MS = 5000;
/** An orphan's accounts are read again this often, at most this many of them. */
const ORPHAN_CHECK_MS = 1000;
const ACCOUNTS_CHECKED = 20;

/** Lua: HSET the field; PERSIST drops the TTL an earlier version of the edge gave the key. KEYS[1]=ABSENCE_HOLD_KEY, ARGV[1]=field, ARGV[2]=value. */
const PUBLISH_LUA = `redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('PERSIST', KEYS[1])`;
/** Lua: HDEL the field only if it still holds the value read (its edge may be back, writing anew). KEYS[1]=ABSENCE_HOLD_KEY, ARGV[1]=field, ARGV[2]=value. */
const REMOVE_ORPHAN_LUA = `if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`;

/** A peer's hold as read: its edge, its value as written, and the accounts its guard found absent. */
export interface SharedHold extends PeerHold {
  accounts: string[];
  value: string;
}

/**
 * The mass-absence guard's open state, shared between the edges through Redis. Each edge's guard
 * counts with its own copies; an edge that has just started has none, and alone it would answer
 * 403 Forbidden to a crowd of deletions its peers recognised as a gutted dataset.
 *
 * `credit-edge:absence-hold` is a hash: `{node}:{instance}` -> `{mark, openedAt, why, accounts,
 * renewedAt}` (JSON), written on the master (through Sentinel) by every edge process whose own
 * guard is open, written again every second, removed when it closes. Every edge reads it from a
 * replica in sync four times a second and holds its absences while a peer's hold stands under the
 * same dataset and deletions count (`mark`): an operator's `accept-deletions` or a new dataset
 * releases every hold at once.
 *
 * A hold outlives its edge. One not written again for 5 s is an orphan (its edge died, or every
 * edge that saw the accounts restarted): it stands while at least half of the accounts it names
 * still read absent, checked every second in one proven read (src/accounts/reader.ts
 * findAbsent), and is removed from the master once they read present (the data came back).
 * Otherwise a gutted dataset that stays gutted would become 403s as soon as the edges that had
 * copies were gone. A hold that is lost, or late, leaves each edge with its own guard.
 */
export class SharedAbsenceHold {
  /** This edge process in the hash: a restarted process is another one. */
  readonly field: string;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private publishedAt: number | undefined;
  private lastReadAt = 0;
  /** Each peer's hold as last read: when its value last changed (this edge's clock), and an orphan's last check. */
  private readonly watched = new Map<string, { value: string; changedAt: number; check?: OrphanCheck }>();

  constructor(
    private readonly o: {
      node: string;
      guard: AbsenceGuard;
      dataset: DatasetWatch;
      pool: ReplicaPool;
      /** Reads whether an orphaned hold's accounts are still absent. */
      reader: Pick<AccountReader, 'findAbsent'>;
      /** The master, through Sentinel: where this edge's hold is written (none: it only reads its peers'). */
      master?: Redis;
      logger: Logger;
    },
  ) {
    this.field = `${o.node}:${randomBytes(4).toString('hex')}`;
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), TICK_MS);
    this.timer.unref();
    void this.tick();
  }

  /**
   * An open guard's hold is left on the master, as if the process had died: the peers check its
   * accounts. Withdrawn here, a rolling restart during a gutted dataset would end every hold.
   */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.publishedAt !== undefined && !this.o.guard.state(Date.now()).open) await this.withdraw();
    this.o.master?.disconnect();
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const now = Date.now();
      await Promise.all([this.readPeers(now), this.share(now)]);
    } finally {
      this.busy = false;
    }
  }

  /** Writes, renews or withdraws this edge's hold, as its own guard stands. */
  private async share(now: number): Promise<void> {
    const { master } = this.o;
    if (!master) return;
    const own = this.o.guard.state(now);
    const mark = this.o.dataset.deletionsAcceptedMark;
    if (!own.open || mark === undefined) {
      if (this.publishedAt !== undefined) await this.withdraw();
      return;
    }
    if (this.publishedAt !== undefined && now - this.publishedAt < RENEW_MS) return;
    const value = JSON.stringify({ mark, openedAt: own.openedAt, why: own.why, accounts: own.accounts ?? [], renewedAt: now });
    try {
      await master.eval(PUBLISH_LUA, 1, ABSENCE_HOLD_KEY, this.field, value);
      if (this.publishedAt === undefined) this.o.logger.info({ edge: this.field }, 'mass-absence guard open: shared with the peer edges');
      this.publishedAt = now;
    } catch (err) {
      this.o.logger.debug({ err: (err as Error).message }, 'mass-absence hold not written (the peers keep their own guards)');
    }
  }

  private async withdraw(): Promise<void> {
    try {
      await this.o.master?.hdel(ABSENCE_HOLD_KEY, this.field);
      this.publishedAt = undefined;
    } catch (err) {
      // An orphan then: the peers remove it once its accounts read present.
      this.o.logger.debug({ err: (err as Error).message }, 'mass-absence hold not withdrawn');
    }
  }

  /** The peers' holds that stand, from a replica in sync, handed to this edge's guard. */
  private async readPeers(now: number): Promise<void> {
    const replica = this.o.pool.candidates()[0];
    let raw: Record<string, string> | undefined;
    try {
      raw = replica ? await replica.client.hgetall(ABSENCE_HOLD_KEY) : undefined;
    } catch {
      raw = undefined;
    }
    if (raw === undefined) {
      // Not read: what was read last stands a while (no replica in sync answers lookups either).
      if (now - this.lastReadAt > ORPHAN_MS) this.o.guard.setPeerHolds([]);
      return;
    }
    this.lastReadAt = now;
    for (const edge of this.watched.keys()) if (!(edge in raw)) this.watched.delete(edge);
    const standing: PeerHold[] = [];
    for (const hold of sharedHolds(raw, this.field, this.o.dataset.deletionsAcceptedMark)) {
      let seen = this.watched.get(hold.edge);
      if (seen?.value !== hold.value) this.watched.set(hold.edge, (seen = { value: hold.value, changedAt: now }));
      if (now - seen.changedAt < ORPHAN_MS) {
        standing.push(hold);
        continue;
      }
      seen.check = await this.checkOrphan(hold, seen.check, now);
      if (seen.check.stands) standing.push({ ...hold, why: `${hold.why}; its edge is gone, ${seen.check.detail}` });
    }
    this.o.guard.setPeerHolds(standing);
  }

  /** Whether an orphaned hold stands: its accounts read again (every ORPHAN_CHECK_MS), and removed once they read present. */
  private async checkOrphan(hold: SharedHold, last: OrphanCheck | undefined, now: number): Promise<OrphanCheck> {
    if (last && now - last.at < ORPHAN_CHECK_MS) return last;
    const found = hold.accounts.length > 0 ? await this.o.reader.findAbsent(hold.accounts) : { absent: [], checked: 0 };
    // No answer from a replica in sync: nothing is proven, the hold stands.
    if (!found) return { at: now, stands: true, proven: false, detail: last?.detail ?? 'its accounts not read yet' };
    const check = { at: now, proven: true, ...orphanVerdict(found.absent.length, found.checked) };
    const { logger, master } = this.o;
    if (check.stands) {
      if (!(last?.stands && last.proven)) logger.warn({ edge: hold.edge, openedAt: hold.openedAt, absent: found.absent.length, checked: found.checked }, 'mass-absence hold of an edge that is gone kept: its accounts still read absent; if the deletions are real: credit-edge dataset accept-deletions');
      return check;
    }
    // Once: an edge without a master connection cannot remove it, and reads it void every second.
    if (!(last?.proven && !last.stands)) logger.info({ edge: hold.edge, openedAt: hold.openedAt, absent: found.absent.length, checked: found.checked }, 'mass-absence hold of an edge that is gone released: its accounts read present again');
    try {
      await master?.eval(REMOVE_ORPHAN_LUA, 1, ABSENCE_HOLD_KEY, hold.edge, hold.value);
    } catch (err) {
      logger.debug({ err: (err as Error).message }, 'orphaned mass-absence hold not removed (ignored here all the same)');
    }
    return check;
  }
}

interface OrphanCheck {
  at: number;
  stands: boolean;
  /** Its accounts were read (false: no replica in sync answered, and it stands on doubt). */
  proven: boolean;
  detail: string;
}

/** An orphaned hold stands while at least half of the accounts it names read absent; one naming none cannot be checked, and lapses. */
export function orphanVerdict(absent: number, checked: number): { stands: boolean; detail: string } {
  return { stands: checked > 0 && absent * 2 >= checked, detail: `${absent} of the ${checked} accounts it named still read absent` };
}

/** The holds of other edge processes under `mark` (this edge's dataset and deletions count); a value that does not parse is no hold. */
export function sharedHolds(raw: Record<string, string>, ownField: string, mark: string | undefined): SharedHold[] {
  if (mark === undefined) return [];
  const holds: SharedHold[] = [];
  for (const [edge, value] of Object.entries(raw)) {
    if (edge === ownField) continue;
    try {
      const v = JSON.parse(value) as { mark?: unknown; openedAt?: unknown; why?: unknown; accounts?: unknown };
      if (v.mark !== mark || typeof v.openedAt !== 'number') continue;
      const accounts = Array.isArray(v.accounts) ? v.accounts.filter((a): a is string => typeof a === 'string' && ACCOUNT_ID_PATTERN.test(a)).slice(0, ACCOUNTS_CHECKED) : [];
      holds.push({ edge, openedAt: v.openedAt, why: typeof v.why === 'string' ? v.why : '', accounts, value });
    } catch {
      // someone else's bytes: not a hold
    }
  }
  return holds;
}
