import { Redis } from 'ioredis';
import type { Logger } from '../log.js';

/** An invalidation of one account's keys: its hash, or its calls in progress. */
export interface AccountInvalidation {
  accountId: string;
  key: 'account' | 'calls';
}

/** What an invalidated key means: one account's keys, or everything this replica served. */
export type Invalidation = AccountInvalidation | 'all';

export interface TrackingOptions {
  host: string;
  port: number;
  password?: string;
  connectTimeoutMs: number;
  logger: Logger;
  /** Maps an invalidated key to what it invalidates (undefined: not ours, ignored). */
  keyMeaning(key: string): Invalidation | undefined;
  onInvalidate(what: AccountInvalidation): void;
}

/** A read in flight: its answer may fill the local copy only if nothing invalidated it meanwhile. */
export interface ReadTicket {
  epoch: number;
  seq: number;
}

/**
 * Redis server-assisted client-side caching for one replica (CLIENT TRACKING). The replica tells
 * us when a key our data connection read changes, including through the replication stream, and
 * sends "flush everything" after a full resync. ioredis drops RESP3 `invalidate` pushes, so the
 * invalidations go (REDIRECT) to a second connection speaking RESP2, subscribed to
 * `__redis__:invalidate`, where they arrive as plain pub/sub messages.
 *
 * The `epoch` changes whenever the copies read so far can no longer be trusted: either connection
 * dropped or (re)connected, tracking (re)enabled, a flush, the replica out of sync. A copy is
 * valid only under the epoch it was read in.
 */
export class Tracking {
  /** Changes whenever every copy from this replica must be dropped. */
  epoch = 0;
  /** Both connections up and tracking on. */
  active = false;
  private readonly subscriber: Redis;
  private subscriberId: string | undefined;
  private seq = 0;
  /** accountId -> seq of the read in flight whose answer may still be kept. */
  private readonly pending = new Map<string, number>();

  constructor(
    private readonly data: Redis,
    private readonly o: TrackingOptions,
  ) {
    this.subscriber = new Redis({
      host: o.host,
      port: o.port,
      ...(o.password !== undefined && { password: o.password }),
      connectionName: 'credit-edge-invalidations',
      // RESP2: invalidations then arrive as pub/sub messages, which ioredis hands on.
      protocol: 2,
      autoResubscribe: false,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false,
      connectTimeout: o.connectTimeoutMs,
      keepAlive: 1000,
      retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    });
    this.subscriber.on('ready', () => void this.subscribe());
    this.subscriber.on('close', () => this.lost('invalidation connection closed'));
    this.subscriber.on('error', (err: Error) => o.logger.debug({ err: err.message }, 'invalidation connection error'));
    this.subscriber.on('messageBuffer', (_channel: Buffer, keys: Buffer[] | null) => this.onMessage(keys));
    data.on('ready', () => void this.enable());
    data.on('close', () => this.lost('data connection closed'));
  }

  /** Every copy from this replica is void from now on (a flush, a drop, the replica out of sync). */
  invalidateAll(): void {
    this.epoch++;
    this.pending.clear();
  }

  /** Call before sending a read whose answer may fill the local copy. */
  beginRead(accountId: string): ReadTicket {
    const seq = ++this.seq;
    this.pending.set(accountId, seq);
    return { epoch: this.epoch, seq };
  }

  /** Whether the read's answer may fill the local copy: tracking on, and nothing invalidated it since it was sent. */
  keep(accountId: string, ticket: ReadTicket): boolean {
    const kept = this.active && ticket.epoch === this.epoch && this.pending.get(accountId) === ticket.seq;
    if (this.pending.get(accountId) === ticket.seq) this.pending.delete(accountId);
    return kept;
  }

  async close(): Promise<void> {
    this.active = false;
    this.subscriber.disconnect();
  }

  private async subscribe(): Promise<void> {
    try {
      this.subscriberId = String(await this.subscriber.client('ID'));
      await this.subscriber.subscribe('__redis__:invalidate');
      await this.enable();
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'invalidation connection not subscribed: no local copy from this replica');
    }
  }

  /** Turns tracking on for the data connection, redirected to the subscriber (again after any reconnect). */
  private async enable(): Promise<void> {
    this.invalidateAll();
    this.active = false;
    if (this.data.status !== 'ready' || this.subscriber.status !== 'ready' || this.subscriberId === undefined) return;
    const id = this.subscriberId;
    const epoch = this.epoch;
    try {
      await this.data.call('CLIENT', 'TRACKING', 'off');
      await this.data.call('CLIENT', 'TRACKING', 'on', 'REDIRECT', id);
      // Anything that happened meanwhile (a drop, a flush) wins: enable again on the next ready.
      if (epoch === this.epoch && id === this.subscriberId) this.active = true;
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'CLIENT TRACKING refused: no local copy from this replica');
    }
  }

  private lost(why: string): void {
    if (this.active) this.o.logger.info({ why }, 'local copies from this replica dropped');
    this.active = false;
    this.invalidateAll();
  }

  private onMessage(keys: Buffer[] | null): void {
    // null: the replica flushed (a full resync, FLUSHALL): everything it served is void.
    if (keys === null) return this.invalidateAll();
    for (const raw of keys) {
      const what = this.o.keyMeaning(raw.toString());
      if (what === undefined) continue;
      if (what === 'all') return this.invalidateAll();
      this.pending.delete(what.accountId);
      this.o.onInvalidate(what);
    }
  }
}
