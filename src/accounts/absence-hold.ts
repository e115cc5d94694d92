import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { AbsenceGuard, PeerHold } from './absence-guard.js';
import type { DatasetWatch } from './dataset-watch.js';
import type { ReplicaPool } from './replica-pool.js';
import { ABSENCE_HOLD_KEY } from '../redis/keys.js';

/** How often the peers' holds are read, and this edge's own is written while its guard is open. */
const TICK_MS = 250;
/** The hold is renewed this often while open ... */
const RENEW_MS = 1000;
/** ... and lapses this long after its last renewal (an edge that died with its guard open). */
const TTL_MS = 5000;

/** Lua: HSET the field, then the key's TTL. KEYS[1]=ABSENCE_HOLD_KEY, ARGV[1]=field, ARGV[2]=value, ARGV[3]=ttl ms. */
const PUBLISH_LUA = `redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('PEXPIRE', KEYS[1], ARGV[3])`;

/**
 * The mass-absence guard's open state, shared between the edges through Redis. Each edge's guard
 * counts with its own copies; an edge that has just started has none, and alone it would answer
 * 403 Forbidden to a crowd of deletions its peers recognised as a gutted dataset.
 *
 * `credit-edge:absence-hold` is a hash: `{node}:{instance}` -> `{mark, openedAt, why}` (JSON),
 * written on the master (through Sentinel) by every edge process whose own guard is open,
 * renewed every second with the key's TTL (5 s), removed when it closes. Every edge reads it from
 * a replica in sync four times a second and holds its absences while a peer's guard is open
 * under the same dataset and deletions count (`mark`): an operator's `accept-deletions` or a new
 * dataset releases every hold at once. Advisory: a hold that is lost, or late, leaves each edge
 * with its own guard, as before; one that outlives its edge lapses by itself.
 */
export class SharedAbsenceHold {
  /** This edge process in the hash: a restarted process is another one. */
  readonly field: string;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private publishedAt: number | undefined;
  private lastReadAt = 0;

  constructor(
    private readonly o: {
      node: string;
      guard: AbsenceGuard;
      dataset: DatasetWatch;
      pool: ReplicaPool;
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

  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.publishedAt !== undefined) await this.withdraw();
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
    const value = JSON.stringify({ mark, openedAt: own.openedAt, why: own.why });
    try {
      await master.eval(PUBLISH_LUA, 1, ABSENCE_HOLD_KEY, this.field, value, TTL_MS);
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
      // It lapses by itself within TTL_MS.
      this.o.logger.debug({ err: (err as Error).message }, 'mass-absence hold not withdrawn');
    }
  }

  /** The peers' holds, from a replica in sync, handed to this edge's guard. */
  private async readPeers(now: number): Promise<void> {
    const replica = this.o.pool.candidates()[0];
    let raw: Record<string, string> | undefined;
    try {
      raw = replica ? await replica.client.hgetall(ABSENCE_HOLD_KEY) : undefined;
    } catch {
      raw = undefined;
    }
    if (raw === undefined) {
      // Not read: what was read last stands until it would have lapsed.
      if (now - this.lastReadAt > TTL_MS) this.o.guard.setPeerHolds([]);
      return;
    }
    this.lastReadAt = now;
    this.o.guard.setPeerHolds(peerHolds(raw, this.field, this.o.dataset.deletionsAcceptedMark));
  }
}

/** The holds of other edge processes under `mark` (this edge's dataset and deletions count); a value that does not parse is no hold. */
export function peerHolds(raw: Record<string, string>, ownField: string, mark: string | undefined): PeerHold[] {
  if (mark === undefined) return [];
  const holds: PeerHold[] = [];
  for (const [edge, value] of Object.entries(raw)) {
    if (edge === ownField) continue;
    try {
      const v = JSON.parse(value) as { mark?: unknown; openedAt?: unknown; why?: unknown };
      if (v.mark === mark && typeof v.openedAt === 'number') holds.push({ edge, openedAt: v.openedAt, why: typeof v.why === 'string' ? v.why : '' });
    } catch {
      // someone else's bytes: not a hold
    }
  }
  return holds;
}
