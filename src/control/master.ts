import { Redis, type ChainableCommander } from 'ioredis';
import type { Logger } from '../log.js';
import { sentinelMasterClient } from '../redis/master-client.js';

export interface SentinelAddress {
  host: string;
  port: number;
}

export interface MasterOptions {
  masterName: string;
  sentinels: SentinelAddress[];
  password?: string;
  /** Every command to the master or a Sentinel fails after this long: a hung master must not hang us. */
  commandTimeoutMs: number;
  /** After a write, WAIT for this many replicas (0: do not wait). Fewer acknowledgements: not done. */
  waitReplicas: number;
  waitTimeoutMs: number;
  connectionName: string;
  logger: Logger;
}

/** Where the writes would go, proven just now: Sentinel's majority and the node itself agree. */
export interface Fence {
  address: string;
  /** Changes on every new connection: a batch must be written on the connection it was read on. */
  generation: number;
}

export type FenceResult = { ok: true; fence: Fence } | { ok: false; why: string };
export type WriteResult = { done: true; address: string; acknowledgedBy: number } | { done: false; why: string };

/**
 * The master, reached only through Sentinel, with fenced writes (the incident's rule 3):
 * - ioredis in Sentinel mode with its failover detector, so a +switch-master moves the connection
 *   at once, even when the old master hangs instead of closing (ioredis #1314).
 * - Before each write batch: a majority of the configured Sentinels name the same master, the
 *   connection is to that address, and the node says ROLE master. Otherwise nothing is written,
 *   and a connection to a node Sentinel no longer names is dropped and re-resolved.
 * - A batch is one MULTI/EXEC on the connection it was read on (WATCHed keys abort it when they
 *   changed); with waitReplicas, a batch the replicas did not acknowledge counts as not done.
 */
export class FencedMaster {
  readonly client: Redis;
  private readonly sentinelClients: Redis[];
  private generation = 0;
  private dropping: object | undefined;
  private readonly logger: Logger;

  constructor(private readonly o: MasterOptions) {
    this.logger = o.logger;
    this.client = sentinelMasterClient({
      sentinels: o.sentinels,
      masterName: o.masterName,
      ...(o.password !== undefined && { password: o.password }),
      timeoutMs: o.commandTimeoutMs,
      connectionName: o.connectionName,
    });
    this.client.on('ready', () => {
      this.generation++;
      this.logger.info({ master: this.connectedAddress() }, 'connected to master');
    });
    this.client.on('error', (err: Error) => this.logger.debug({ err: err.message }, 'master connection error'));
    this.sentinelClients = o.sentinels.map(
      (s) =>
        new Redis({
          host: s.host,
          port: s.port,
          commandTimeout: o.commandTimeoutMs,
          connectTimeout: Math.max(o.commandTimeoutMs, 1000),
          enableOfflineQueue: false,
          maxRetriesPerRequest: 0,
          retryStrategy: (attempt) => Math.min(100 * attempt, 1000),
        }),
    );
    for (const s of this.sentinelClients) s.on('error', () => undefined);
  }

  /** host:port of the node the connection is open to, or undefined. */
  connectedAddress(): string | undefined {
    const stream = (this.client as unknown as { stream?: { remoteAddress?: string; remotePort?: number } }).stream;
    if (this.client.status !== 'ready' || !stream?.remoteAddress) return undefined;
    return `${stream.remoteAddress.replace(/^::ffff:/, '')}:${stream.remotePort}`;
  }

  /** The master a majority of the configured Sentinels name now, or why there is none. */
  async sentinelMaster(): Promise<{ address: string } | { why: string }> {
    const { majority, votes } = await askSentinels(this.sentinelClients, this.o.masterName);
    if (majority !== undefined) return { address: majority };
    return { why: `no majority of ${this.sentinelClients.length} Sentinels names one master (${[...votes].map(([a, n]) => `${a}x${n}`).join(', ') || 'no answers'})` };
  }

  /**
   * Drops the connection and re-resolves the master through Sentinel, once per connection: a hung
   * node takes a while to close, and rounds keep coming meanwhile.
   */
  private drop(why: string): void {
    const stream = (this.client as unknown as { stream?: object }).stream;
    if (stream !== undefined && stream === this.dropping) return;
    this.dropping = stream;
    this.logger.warn({ why }, 'not talking to this node any more: reconnecting through Sentinel');
    this.client.disconnect(true);
  }

  /** Proves where writes would go right now; see the class comment. */
  async fence(): Promise<FenceResult> {
    const named = await this.sentinelMaster();
    if ('why' in named) return { ok: false, why: named.why };
    const connected = this.connectedAddress();
    if (connected === undefined) return { ok: false, why: `not connected to the master (${this.client.status})` };
    if (connected !== named.address) {
      // Sentinel has moved on: never keep talking to the node it demoted.
      this.drop(`connected to ${connected} but Sentinel names ${named.address}`);
      return { ok: false, why: `connected to ${connected} but Sentinel names ${named.address}` };
    }
    const generation = this.generation;
    try {
      const role = (await this.client.call('ROLE')) as unknown[];
      if (role[0] !== 'master') {
        this.drop(`${connected} says ROLE ${String(role[0])}`);
        return { ok: false, why: `${connected} says ROLE ${String(role[0])}` };
      }
    } catch (err) {
      return { ok: false, why: `ROLE on ${connected} failed: ${(err as Error).message}` };
    }
    if (generation !== this.generation) return { ok: false, why: 'the connection changed during the check' };
    return { ok: true, fence: { address: connected, generation } };
  }

  /**
   * Writes a batch (MULTI/EXEC) if the fence taken before the reads still holds: same connection,
   * Sentinel still names it, ROLE master. Keys WATCHed since the reads abort it when they changed.
   */
  async write(readFence: Fence, build: (tx: ChainableCommander) => void): Promise<WriteResult> {
    const now = await this.fence();
    if (!now.ok) {
      await this.client.unwatch().catch(() => undefined);
      return { done: false, why: now.why };
    }
    if (now.fence.generation !== readFence.generation || now.fence.address !== readFence.address) {
      return { done: false, why: `the master connection changed since the reads (${readFence.address} -> ${now.fence.address})` };
    }
    try {
      const tx = this.client.multi();
      build(tx);
      const results = await tx.exec();
      if (results === null) return { done: false, why: 'a watched key changed since the reads (EXEC aborted)' };
      const failed = results.find(([err]) => err);
      if (failed) return { done: false, why: `a command in the batch failed: ${(failed[0] as Error).message}` };
    } catch (err) {
      // A timeout leaves the outcome open: counted as not done; the next round reads what is there.
      return { done: false, why: `batch on ${now.fence.address} failed: ${(err as Error).message}` };
    }
    if (this.o.waitReplicas <= 0) return { done: true, address: now.fence.address, acknowledgedBy: 0 };
    try {
      const acknowledged = await this.client.call('WAIT', String(this.o.waitReplicas), String(this.o.waitTimeoutMs));
      const count = Number(acknowledged);
      if (count < this.o.waitReplicas) {
        return { done: false, why: `only ${count} of ${this.o.waitReplicas} replicas acknowledged within ${this.o.waitTimeoutMs} ms` };
      }
      return { done: true, address: now.fence.address, acknowledgedBy: count };
    } catch (err) {
      return { done: false, why: `WAIT on ${now.fence.address} failed: ${(err as Error).message}` };
    }
  }

  async close(): Promise<void> {
    this.client.disconnect();
    for (const s of this.sentinelClients) s.disconnect();
  }
}

/**
 * Asks every Sentinel which node is the master (`host:port`; unanswered counts as no vote): the
 * node named by a majority of them, if any, and the tally.
 */
export async function askSentinels(sentinels: readonly Redis[], masterName: string): Promise<{ majority: string | undefined; votes: Map<string, number> }> {
  const answers = await Promise.all(
    sentinels.map((s) =>
      (s.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName) as Promise<[string, string] | null>).then(
        (reply) => (reply ? `${reply[0]}:${reply[1]}` : undefined),
        () => undefined,
      ),
    ),
  );
  const votes = new Map<string, number>();
  for (const a of answers) if (a) votes.set(a, (votes.get(a) ?? 0) + 1);
  const needed = Math.floor(sentinels.length / 2) + 1;
  const majority = [...votes].find(([, count]) => count >= needed)?.[0];
  return { majority, votes };
}
