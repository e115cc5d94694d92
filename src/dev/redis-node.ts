import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { RedisProcess } from './redis-process.js';
import { firstReplyLine, parseInfo, sendAndForget, sleep, waitUntil } from './redis-wire.js';

export interface Address {
  host: string;
  port: number;
}

/** What a node needs from its topology: who the master is right now. */
export interface NodeContext {
  master(): RedisNode;
}

export interface RedisNodeOptions {
  name: string;
  host: string;
  port: number;
  dir: string;
  logger: Logger;
  context: NodeContext;
  /** `replica-serve-stale-data`: Redis's default (true) is the incident's trap. */
  serveStaleData: boolean;
}

/**
 * Filler keys for makeLoading(). The loader answers clients only every
 * `loading-process-events-interval-bytes` (at least 1 KiB) of RDB read, so each value is over
 * 1 KiB *after* RDB compression: random hex, not a repeated character (which LZF squeezes to a few
 * bytes, leaving the server mute for seconds instead of answering -LOADING).
 */
const FILLER_PREFIX = 'dev:filler:';
const FILLER_KEYS = 50;
const fillerValue = () => randomBytes(600).toString('hex');

/** The replica's `masteruser` while its link is cut: a user no node has, so AUTH fails. */
const CUT_LINK_USER = 'credit-edge-cut-link';

/**
 * A Redis data node (master or replica) with an admin client and fault injection. The role is
 * whatever Redis says (INFO replication): Sentinel may change it.
 */
export class RedisNode implements Address {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly process: RedisProcess;
  private readonly logger: Logger;
  private readonly context: NodeContext;
  private serveStaleData: boolean;
  private admin: Redis | undefined;
  private linkCut = false;
  private killed = false;
  private closed = false;

  constructor(options: RedisNodeOptions) {
    this.name = options.name;
    this.host = options.host;
    this.port = options.port;
    this.logger = options.logger;
    this.context = options.context;
    this.serveStaleData = options.serveStaleData;
    this.process = new RedisProcess({ name: options.name, host: options.host, port: options.port, dir: options.dir, args: [], logger: options.logger });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** running, frozen (SIGSTOP) or down (killed or stopped). */
  get state(): 'running' | 'frozen' | 'down' {
    if (!this.process.isRunning) return 'down';
    return this.process.isFrozen ? 'frozen' : 'running';
  }

  get isLinkCut(): boolean {
    return this.linkCut;
  }

  /**
   * The admin client. No ready check (it would wait out LOADING instead of showing it), a command
   * timeout (a frozen node must not hang the caller), and reconnects (restarts keep the port).
   */
  get client(): Redis {
    // After stop() a new client would reconnect to a dead port forever and hold the process open.
    if (this.closed) throw new Error(`${this.name} is stopped`);
    if (!this.admin) {
      const client = new Redis({
        host: this.host,
        port: this.port,
        enableReadyCheck: false,
        commandTimeout: 5000,
        connectTimeout: 2000,
        maxRetriesPerRequest: 2,
        retryStrategy: (times: number) => Math.min(times * 50, 500),
      });
      client.on('error', (err: Error) => this.logger.debug({ node: this.name, err: err.message }, 'admin client error'));
      this.admin = client;
    }
    return this.admin;
  }

  /** Starts the process as a master (no `replicaOf`) or as a replica of `replicaOf`. */
  async start(replicaOf?: Address, extraArgs: string[] = []): Promise<void> {
    this.killed = false;
    // A replica may already be loading its first sync when the readiness probe lands (syncs of
    // small datasets take milliseconds): -LOADING means the process is up.
    await this.process.start({ args: this.serverArgs(replicaOf, extraArgs), acceptLoading: replicaOf !== undefined });
  }

  private serverArgs(replicaOf: Address | undefined, extraArgs: string[]): string[] {
    const args = [
      '--port', String(this.port),
      '--bind', this.host,
      '--dir', this.process.dir,
      '--logfile', this.process.logFile,
      '--daemonize', 'no',
      '--save', '',
      '--appendonly', 'no',
      '--enable-debug-command', 'local',
      // Syncs start at once (Redis waits 5 s by default to batch replicas).
      '--repl-diskless-sync', 'yes',
      '--repl-diskless-sync-delay', '0',
      // SIGTERM must not wait for lagging (e.g. frozen) replicas: Redis 7 waits 10 s by default.
      '--shutdown-timeout', '0',
      '--replica-serve-stale-data', this.serveStaleData ? 'yes' : 'no',
    ];
    if (replicaOf) args.push('--replicaof', replicaOf.host, String(replicaOf.port));
    return [...args, ...extraArgs];
  }

  /** INFO for one section (e.g. 'replication', 'persistence', 'keyspace') as a field map. */
  async info(section = 'replication'): Promise<Record<string, string>> {
    return parseInfo(await this.client.info(section));
  }

  async configSet(name: string, value: string): Promise<void> {
    await this.client.call('CONFIG', ['SET', name, value]);
  }

  /** Sets `replica-serve-stale-data` now and for later restarts. */
  async setServeStaleData(serve: boolean): Promise<void> {
    this.serveStaleData = serve;
    await this.configSet('replica-serve-stale-data', serve ? 'yes' : 'no');
  }

  /** Resolves once this replica reports `master_link_status:up`. */
  async waitForSync(timeoutMs = 15_000): Promise<void> {
    await waitUntil(`${this.name} master_link_status:up`, timeoutMs, async () =>
      (await this.info('replication')).master_link_status === 'up' ? true : undefined,
    );
  }

  // ---- faults -------------------------------------------------------------------------------

  /** SIGSTOP: connections stay open, nothing is answered (commands time out). */
  freeze(): void {
    this.process.freeze();
    this.logger.info({ node: this.name, pid: this.pid }, 'fault: frozen (SIGSTOP)');
  }

  thaw(): void {
    this.process.thaw();
    this.logger.info({ node: this.name, pid: this.pid }, 'fault: thawed (SIGCONT)');
  }

  /** SIGKILL: the node is gone; its port refuses connections. */
  async kill(): Promise<void> {
    this.killed = true;
    await this.process.kill();
    this.logger.info({ node: this.name }, 'fault: killed (SIGKILL)');
  }

  get wasKilled(): boolean {
    return this.killed;
  }

  /**
   * DEBUG SLEEP on its own connection, not awaited: the server's single thread is blocked for `ms`,
   * so every client waits. Resolves as soon as the command is sent.
   */
  async slow(ms: number): Promise<void> {
    await sendAndForget(this.host, this.port, ['DEBUG', 'SLEEP', (ms / 1000).toFixed(3)]);
    this.logger.info({ node: this.name, ms }, 'fault: DEBUG SLEEP');
  }

  /** CLIENT PAUSE ALL: the server stays up (PING from the admin client too waits) for `ms`. */
  async pause(ms: number): Promise<void> {
    await this.client.call('CLIENT', ['PAUSE', String(Math.round(ms)), 'ALL']);
    this.logger.info({ node: this.name, ms }, 'fault: CLIENT PAUSE');
  }

  /**
   * Kills this node and starts it again on the same port with no data, as a replica of the current
   * master, so it does a full resync: the incident's resync. Until the sync is done, a replica that
   * serves stale data (Redis's default) answers nil for keys the master has.
   *
   * `holdSyncMs` keeps that window open long enough to observe: the master's RDB child sleeps
   * `rdb-key-save-delay` per key so the transfer takes about `holdSyncMs`. The delay is set on the
   * master only until the fork has started (the child keeps its copy), then reset, so nothing
   * else is slowed. With a hold, this resolves while the window is open (master_sync_in_progress:1);
   * without, once the replica is in sync (unless `waitForSync: false`).
   */
  async restartFromEmpty(options: { holdSyncMs?: number; waitForSync?: boolean; extraArgs?: string[] } = {}): Promise<void> {
    const master = this.context.master();
    if (master === this) throw new Error(`${this.name} is the master: restartFromEmpty() is for replicas`);
    const holdMs = options.holdSyncMs ?? 0;
    if (holdMs > 0) {
      const keys = Math.max(1, await master.client.dbsize());
      await master.configSet('rdb-key-save-delay', String(Math.ceil((holdMs * 1000) / keys)));
    }
    try {
      await this.process.kill();
      this.removeDataFiles();
      this.linkCut = false;
      await this.start(master, options.extraArgs);
      this.logger.info({ node: this.name, holdMs }, 'fault: restarted from empty (full resync)');
      if (holdMs > 0) {
        await waitUntil(`${this.name} master_sync_in_progress:1`, 10_000, async () =>
          (await this.info('replication')).master_sync_in_progress === '1' ? true : undefined,
        10);
      }
    } finally {
      if (holdMs > 0) await master.configSet('rdb-key-save-delay', '0');
    }
    if (options.waitForSync ?? holdMs === 0) await this.waitForSync();
  }

  /**
   * Restarts this master without its data (its RDB removed first: Redis would load it at start):
   * the replicas resync to an empty dataset, then answer nil for every key while *in sync*. The
   * lost dataset of Redis' own replication docs; only the dataset marker tells it from a real one.
   * Quick enough (well under Sentinel's down-after) that no failover follows.
   */
  async restartEmptyMaster(): Promise<void> {
    if (this.context.master() !== this) throw new Error(`${this.name} is not the master: restartEmptyMaster() is for the master`);
    await this.process.kill();
    this.removeDataFiles();
    await this.start();
    this.logger.info({ node: this.name }, 'fault: master restarted without its data');
  }

  /**
   * Makes this replica answer -LOADING for about `ms`: it restarts empty and loads the RDB from its
   * full resync slowly (hidden config `key-load-delay` per key, over filler keys written on the
   * master; `loading-process-events-interval-bytes` at its minimum so it answers clients while
   * loading). Resolves once a PING has been answered with -LOADING. Loading ends by itself, or at
   * once with stopLoading(). Do not write to the master meanwhile (nothing else waits on it).
   */
  async makeLoading(ms = 2000): Promise<void> {
    const master = this.context.master();
    await master.ensureFiller();
    const keys = Math.max(1, await master.client.dbsize());
    const perKeyUs = Math.ceil((ms * 1000) / keys);
    await this.restartFromEmpty({
      waitForSync: false,
      extraArgs: ['--key-load-delay', String(perKeyUs), '--loading-process-events-interval-bytes', '1024'],
    });
    await waitUntil(`${this.name} to answer -LOADING`, 10_000, async () => {
      const line = await firstReplyLine(this.host, this.port, ['PING'], 1000);
      return line.startsWith('-LOADING') ? true : undefined;
    }, 5).catch((err: Error) => {
      throw new Error(`${err.message}; log: ${this.process.logTail(15)}`);
    });
    this.logger.info({ node: this.name, ms, keys, perKeyUs }, 'fault: loading');
  }

  /** Ends a makeLoading() window now (the rest loads at full speed) and waits for the link. */
  async stopLoading(): Promise<void> {
    await this.configSet('key-load-delay', '0');
    await this.waitForSync();
  }

  /** Writes the filler keys makeLoading() needs (once) and waits until the replicas have them. */
  async ensureFiller(): Promise<void> {
    if ((await this.client.exists(`${FILLER_PREFIX}${FILLER_KEYS - 1}`)) === 1) return;
    const pipeline = this.client.pipeline();
    for (let i = 0; i < FILLER_KEYS; i++) pipeline.set(`${FILLER_PREFIX}${i}`, fillerValue());
    await pipeline.exec();
    await this.waitForReplicas(5000);
  }

  /** WAIT for every replica the master sees online; returns how many acknowledged. */
  async waitForReplicas(timeoutMs: number): Promise<{ acknowledged: number; online: number }> {
    const info = await this.info('replication');
    const online = Object.entries(info).filter(([k, v]) => /^slave\d+$/.test(k) && v.includes('state=online')).length;
    const acknowledged = online === 0 ? 0 : await this.client.wait(online, timeoutMs);
    return { acknowledged, online };
  }

  /**
   * Cuts this replica's link to its master without touching its `replicaof` (which Sentinel would
   * "fix" back): the replica gets a `masteruser` no node knows, and its master connection is
   * dropped. Every reconnect then fails AUTH, so master_link_status stays down; with
   * `replica-serve-stale-data no` reads answer -MASTERDOWN, with yes they serve stale data.
   */
  async cutLink(): Promise<void> {
    await this.configSet('masteruser', CUT_LINK_USER);
    await this.configSet('masterauth', 'cut');
    await this.client.call('CLIENT', ['KILL', 'TYPE', 'master']);
    this.linkCut = true;
    await waitUntil(`${this.name} master_link_status:down`, 5000, async () =>
      (await this.info('replication')).master_link_status === 'down' ? true : undefined,
    );
    this.logger.info({ node: this.name }, 'fault: link to master cut');
  }

  /** Undoes cutLink(); the replica reconnects within a second (partial resync) and this waits for it. */
  async restoreLink(): Promise<void> {
    await this.configSet('masteruser', '');
    await this.configSet('masterauth', '');
    this.linkCut = false;
    await this.waitForSync();
    this.logger.info({ node: this.name }, 'fault: link to master restored');
  }

  private removeDataFiles(): void {
    // A replica keeps the RDB of its last full sync; without removing it, it would restart with
    // old data (also a real failure mode, but not this one).
    for (const file of fs.readdirSync(this.process.dir)) {
      if (file.endsWith('.rdb')) fs.rmSync(path.join(this.process.dir, file), { force: true });
    }
  }

  /** Stops the process and closes the admin client. */
  async stop(): Promise<void> {
    this.closed = true;
    this.admin?.disconnect();
    this.admin = undefined;
    await this.process.stop();
  }
}

/** Runs `fn` against a node but gives up after `ms` (describe() must not hang on a sleeping node). */
export async function withTimeout<T>(ms: number, fn: () => Promise<T>): Promise<T | undefined> {
  return Promise.race([fn(), sleep(ms).then(() => undefined)]);
}
