import { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { answerWithin } from '../redis/deadline.js';
import { invalidationOf } from './local-copy.js';
import { Tracking, type AccountInvalidation } from './tracking.js';
import { notInSyncBecause, parseReplicationInfo, type ReplicationState } from './replication-state.js';

export interface ReplicaAddress {
  /** How operators name it in logs and metrics; defaults to host:port. */
  name?: string;
  host: string;
  port: number;
}

/**
 * - `in-sync`: linked to its master, no sync running: its answers are authoritative.
 * - `unverified`: just (re)connected; not trusted until a probe says it is in sync.
 * - `not-in-sync`: syncing, loading, cut from its master, or not a replica.
 * - `suspect`: a read timed out; skipped until a probe answers in time.
 * - `unreachable`: no connection.
 */
export type ReplicaHealth = 'in-sync' | 'unverified' | 'not-in-sync' | 'suspect' | 'unreachable';

export interface ReplicaOptions {
  probeTimeoutMs: number;
  connectTimeoutMs: number;
  password?: string;
  logger: Logger;
  /** With a local copy: invalidations of one account's keys from this replica (CLIENT TRACKING). */
  onInvalidate?: (replica: Replica, what: AccountInvalidation) => void;
}

/** One local read replica: its connection and what we currently believe of its health. */
export class Replica {
  readonly name: string;
  readonly client: Redis;
  health: ReplicaHealth = 'unreachable';
  /** Why it is not in sync (for logs, metrics and the admin API). */
  healthDetail = 'not connected yet';
  /** Seconds since the replica last heard from its master, as of the last probe or read. */
  masterSilenceS = -1;
  /** When a probe or a read last proved it in sync (ms since epoch). */
  lastInSyncAt = 0;
  /** Invalidations of what this edge read here (client-side caching), when it keeps a local copy. */
  readonly tracking: Tracking | undefined;
  /** Changeable live by a config reload. */
  probeTimeoutMs: number;
  private readonly logger: Logger;

  constructor(
    readonly address: ReplicaAddress,
    options: ReplicaOptions,
  ) {
    this.name = address.name ?? `${address.host}:${address.port}`;
    this.logger = options.logger.child({ replica: this.name });
    this.probeTimeoutMs = options.probeTimeoutMs;
    this.client = new Redis({
      host: address.host,
      port: address.port,
      password: options.password,
      connectionName: 'credit-edge-reader',
      // Never queue a read for later: a read that cannot go now goes to another replica.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // Our own probes judge readiness; ioredis's ready check would hide -LOADING behind a wait.
      enableReadyCheck: false,
      connectTimeout: options.connectTimeoutMs,
      keepAlive: 1000,
      noDelay: true,
      retryStrategy: (attempt) => Math.min(50 * attempt, 1000),
    });
    const { onInvalidate } = options;
    this.tracking = onInvalidate
      ? new Tracking(this.client, {
          host: address.host,
          port: address.port,
          ...(options.password !== undefined && { password: options.password }),
          connectTimeoutMs: options.connectTimeoutMs,
          logger: this.logger,
          keyMeaning: invalidationOf,
          onInvalidate: (what) => onInvalidate(this, what),
        })
      : undefined;
    this.client.on('ready', () => {
      this.setHealth('unverified', 'connected, waiting for a probe');
      void this.probe();
    });
    this.client.on('close', () => this.setHealth('unreachable', 'connection closed'));
    // ioredis reports connection errors here too; health follows from 'close'.
    this.client.on('error', (err: Error) => this.logger.debug({ err: err.message }, 'replica connection error'));
  }

  get inSync(): boolean {
    return this.health === 'in-sync';
  }

  /** Asks the replica how its replication stands; a reply late past probeTimeoutMs is a failure. */
  async probe(): Promise<void> {
    if (this.client.status !== 'ready') return;
    try {
      const info = await answerWithin(this.client.info('replication'), this.probeTimeoutMs);
      if (info === 'late') throw new Error(`probe timed out after ${this.probeTimeoutMs} ms`);
      this.noteReplication(parseReplicationInfo(info));
    } catch (err) {
      this.setHealth(this.health === 'unreachable' ? 'unreachable' : 'suspect', (err as Error).message);
    }
  }

  /** Updates health from what the replica said of its replication (a probe's INFO, a read's ROLE). */
  noteReplication(state: ReplicationState): string | undefined {
    if (state.masterSilenceS !== undefined) this.masterSilenceS = state.masterSilenceS;
    const because = notInSyncBecause(state);
    if (because) this.setHealth('not-in-sync', because);
    else {
      this.setHealth('in-sync', 'in sync');
      this.lastInSyncAt = Date.now();
    }
    return because;
  }

  setHealth(health: ReplicaHealth, detail: string): void {
    // What it served while in sync may be out of date once it is not: no local copy survives that.
    if (this.health === 'in-sync' && health !== 'in-sync') this.tracking?.invalidateAll();
    if (this.health !== health) {
      const level = health === 'in-sync' ? 'info' : 'warn';
      this.logger[level]({ from: this.health, to: health, detail }, 'replica health changed');
    }
    this.health = health;
    this.healthDetail = detail;
  }

  async close(): Promise<void> {
    await this.tracking?.close();
    this.client.disconnect();
  }
}
