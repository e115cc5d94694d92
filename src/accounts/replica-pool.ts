import type { Logger } from '../log.js';
import { Replica, type ReplicaAddress, type ReplicaOptions } from './replica.js';

export interface ReplicaPoolOptions {
  /** How often each replica is asked `INFO replication`. */
  probeIntervalMs: number;
  probeTimeoutMs: number;
  connectTimeoutMs: number;
  password?: string;
  logger: Logger;
  /** With a local copy: invalidations from each replica (CLIENT TRACKING). */
  onInvalidate?: ReplicaOptions['onInvalidate'];
}

/**
 * The local read replicas and their health. Health comes from a cheap periodic probe and from
 * every read (each read carries its own INFO replication); reads go only to replicas in sync.
 */
export class ReplicaPool {
  private list: Replica[];
  private next = 0;
  private prober: NodeJS.Timeout | undefined;
  private options: ReplicaPoolOptions;

  constructor(addresses: ReplicaAddress[], options: ReplicaPoolOptions) {
    if (addresses.length === 0) throw new Error('at least one replica is needed');
    this.options = options;
    this.list = addresses.map((address) => new Replica(address, options));
    this.startProbing();
  }

  get replicas(): readonly Replica[] {
    return this.list;
  }

  /**
   * Applies a new replica list live (config reload): replicas already known (same name, host and
   * port) keep their connection and health, new ones start unverified, removed ones are closed
   * once reads in flight on them have had time to finish. Timing changes apply to all.
   */
  setReplicas(addresses: ReplicaAddress[], timings: Pick<ReplicaPoolOptions, 'probeIntervalMs' | 'probeTimeoutMs' | 'connectTimeoutMs'>): { added: string[]; removed: string[] } {
    if (addresses.length === 0) throw new Error('at least one replica is needed');
    const intervalChanged = timings.probeIntervalMs !== this.options.probeIntervalMs;
    this.options = { ...this.options, ...timings };
    const keyOf = (a: ReplicaAddress) => `${a.name ?? ''}|${a.host}:${a.port}`;
    const kept = new Map(this.list.map((r) => [keyOf(r.address), r]));
    const next = addresses.map((address) => {
      const existing = kept.get(keyOf(address));
      kept.delete(keyOf(address));
      return existing ?? new Replica(address, this.options);
    });
    for (const replica of next) replica.probeTimeoutMs = this.options.probeTimeoutMs;
    const added = next.filter((r) => !this.list.includes(r)).map((r) => r.name);
    this.list = next;
    const removed = [...kept.values()];
    // A read already sent to a removed replica still gets its answer (or times out) first.
    setTimeout(() => void Promise.all(removed.map((r) => r.close())), 1000).unref();
    if (intervalChanged) this.startProbing();
    return { added, removed: removed.map((r) => r.name) };
  }

  private startProbing(): void {
    clearInterval(this.prober);
    this.prober = setInterval(() => {
      for (const replica of this.list) void replica.probe();
    }, this.options.probeIntervalMs);
    this.prober.unref();
  }

  /** Replicas in sync, in round-robin order so that load spreads across them. */
  inSync(): Replica[] {
    const healthy = this.replicas.filter((replica) => replica.inSync);
    if (healthy.length > 1) {
      const start = this.next++ % healthy.length;
      return healthy.slice(start).concat(healthy.slice(0, start));
    }
    return healthy;
  }

  /**
   * The replicas to read from, in order: those in sync (round robin), then the suspect ones (a
   * read timed out on them): slow is not the same as wrong, and a busy machine makes every
   * replica look slow at once. Their answers still carry their own replication state.
   */
  candidates(): Replica[] {
    const suspects = this.list.filter((replica) => replica.health === 'suspect');
    return suspects.length === 0 ? this.inSync() : this.inSync().concat(suspects);
  }

  /** Resolves once at least `count` replicas are in sync, or rejects after timeoutMs. */
  async waitInSync(count = 1, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      await Promise.all(this.replicas.map((replica) => replica.probe()));
      if (this.replicas.filter((replica) => replica.inSync).length >= count) return;
      if (Date.now() > deadline) {
        const states = this.replicas.map((r) => `${r.name}: ${r.health} (${r.healthDetail})`).join('; ');
        throw new Error(`fewer than ${count} replicas in sync after ${timeoutMs} ms: ${states}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async close(): Promise<void> {
    clearInterval(this.prober);
    await Promise.all(this.list.map((replica) => replica.close()));
  }
}
