import { ReplicaPool } from '../../src/accounts/replica-pool.js';
import { AccountReader, type ReaderOptions } from '../../src/accounts/reader.js';
import { silentLogger } from '../../src/log.js';
import type { RedisNode } from '../../src/dev/topology.js';

export interface ReaderUnderTest {
  pool: ReplicaPool;
  reader: AccountReader;
  close(): Promise<void>;
}

/**
 * An account reader over some replicas of a test topology. `probeIntervalMs` long (the default
 * here) means health comes only from reads and explicit probes, so a test decides when the pool
 * learns of a fault, and can catch the reads that race a probe.
 */
export async function readerOver(
  replicas: RedisNode[],
  options: Partial<ReaderOptions> & { probeIntervalMs?: number } = {},
): Promise<ReaderUnderTest> {
  const pool = new ReplicaPool(
    replicas.map((r) => ({ name: r.name, host: r.host, port: r.port })),
    { probeIntervalMs: options.probeIntervalMs ?? 60_000, probeTimeoutMs: 200, connectTimeoutMs: 500, logger: silentLogger },
  );
  await pool.waitInSync(replicas.length);
  const reader = new AccountReader(pool, { hedgeDelayMs: options.hedgeDelayMs ?? 3, replicaTimeoutMs: options.replicaTimeoutMs ?? 250 });
  return { pool, reader, close: () => pool.close() };
}
