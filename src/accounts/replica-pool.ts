import type { Logger } from '../log.js';
import { Replica, type ReplicaAddress } from './replica.js';

export interface ReplicaPoolOptions {
  /** How often each replica is asked `INFO replication`. */
  probeIntervalMs: number;
  probeTimeoutMs: number;
  connectTimeoutMs: number;
  password?: string;
  logger: Logger;
}

/**
 * The local read replicas and their health. Health comes from a cheap periodic probe and from
 * every read (each read carries its own INFO replication); reads go only to replicas in sync.
 */
export class ReplicaPool {
  readonly replicas: Replica[];
  private next = 0;
  private readonly prober: NodeJS.Timeout;

  constructor(addresses: ReplicaAddress[], options: ReplicaPoolOptions) {
    if (addresses.length === 0) throw new Error('at least one replica is needed');
    this.replicas = addresses.map((address) => new Replica(address, options));
    this.prober = setInterval(() => {
      for (const replica of this.replicas) void replica.probe();
    }, options.probeIntervalMs);
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
    await Promise.all(this.replicas.map((replica) => replica.close()));
  }
}
