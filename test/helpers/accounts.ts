import { AbsenceGuard, type AbsenceGuardSettings } from '../../src/accounts/absence-guard.js';
import type { AccountSources } from '../../src/accounts/account-state.js';
import { DatasetWatch } from '../../src/accounts/dataset-watch.js';
import { LocalCopy, type LocalCopyOptions } from '../../src/accounts/local-copy.js';
import { ReplicaPool } from '../../src/accounts/replica-pool.js';
import type { StaleCache } from '../../src/accounts/stale-cache.js';
import { AccountReader, type ReaderOptions } from '../../src/accounts/reader.js';
import { silentLogger } from '../../src/log.js';
import type { RedisNode } from '../../src/dev/topology.js';

export interface ReaderUnderTest {
  pool: ReplicaPool;
  reader: AccountReader;
  dataset: DatasetWatch;
  /** With options.localCopy: the reader's coherent local copy. */
  localCopy?: LocalCopy;
  /** The reader with a cache and a mass-absence guard (defaults as in the config), as the edge reads accounts. */
  sources(cache: StaleCache, guard?: Partial<AbsenceGuardSettings>): AccountSources;
  close(): Promise<void>;
}

export const DEFAULT_GUARD: AbsenceGuardSettings = { windowMs: 60_000, minAccounts: 10, minShare: 0.05, confirmMs: 1000, maxStaleMs: 300_000 };

/**
 * An account reader over some replicas of a test topology. `probeIntervalMs` long (the default
 * here) means health comes only from reads and explicit probes, so a test decides when the pool
 * learns of a fault, and can catch the reads that race a probe.
 */
export async function readerOver(
  replicas: RedisNode[],
  options: Partial<ReaderOptions> & { probeIntervalMs?: number; localCopy?: Partial<LocalCopyOptions> } = {},
): Promise<ReaderUnderTest> {
  const localCopy = options.localCopy ? new LocalCopy({ maxEntries: 1000, maxAgeMs: 10_000, proofMaxAgeMs: 60_000, ...options.localCopy }) : undefined;
  const pool = new ReplicaPool(
    replicas.map((r) => ({ name: r.name, host: r.host, port: r.port })),
    {
      probeIntervalMs: options.probeIntervalMs ?? 60_000,
      probeTimeoutMs: 200,
      connectTimeoutMs: 500,
      logger: silentLogger,
      ...(localCopy && { onInvalidate: (replica, what) => localCopy.invalidate(replica, what) }),
    },
  );
  await pool.waitInSync(replicas.length);
  const dataset = new DatasetWatch(silentLogger);
  const reader = new AccountReader(pool, { hedgeDelayMs: options.hedgeDelayMs ?? 3, replicaTimeoutMs: options.replicaTimeoutMs ?? 250 }, dataset, localCopy);
  const sources = (cache: StaleCache, guard: Partial<AbsenceGuardSettings> = {}): AccountSources => ({
    reader,
    cache,
    guard: new AbsenceGuard({ ...DEFAULT_GUARD, ...guard }, { deletionsAcceptedMark: () => dataset.deletionsAcceptedMark }, silentLogger),
  });
  return { pool, reader, dataset, ...(localCopy && { localCopy }), sources, close: () => pool.close() };
}
