import { DatasetWatch } from '../src/accounts/dataset-watch.js';
import { LocalCopy } from '../src/accounts/local-copy.js';
import { AccountReader } from '../src/accounts/reader.js';
import { ReplicaPool } from '../src/accounts/replica-pool.js';
import { startTopology, type RedisNode } from '../src/dev/topology.js';
import { silentLogger } from '../src/log.js';
import { figuresOf } from './stats.js';
import { accountKey } from '../src/redis/keys.js';

/**
 * How fast a change on the master decides the next call on every edge, with the local copy on:
 * two edges' readers (each with its own local copy, as two edge processes have), each on its own
 * replica. For each change, an operator-style HSET on the master (a block, then a top-up), each
 * reader looks the account up in a tight loop (each lookup is what the next call would get) until
 * it sees the new value. The delay is from the write's reply on the master to the first lookup
 * that returns the new value.
 *   npm run -s build && node dist/bench/propagation.js [changes]
 * Prints one JSON line: changes, per-edge delays p50/p99/max (ms), and the local copy's hit rate.
 */
const changes = Number(process.argv[2] ?? 200);

async function edgeReader(replica: RedisNode): Promise<{ reader: AccountReader; copy: LocalCopy; pool: ReplicaPool }> {
  const copy = new LocalCopy({ maxEntries: 1000, maxAgeMs: 10_000, proofMaxAgeMs: 500 });
  const pool = new ReplicaPool([{ name: replica.name, host: replica.host, port: replica.port }], {
    probeIntervalMs: 250,
    probeTimeoutMs: 250,
    connectTimeoutMs: 1000,
    logger: silentLogger,
    onInvalidate: (r, what) => copy.invalidate(r, what),
  });
  await pool.waitInSync(1);
  const reader = new AccountReader(pool, { hedgeDelayMs: 3, replicaTimeoutMs: 10 }, new DatasetWatch(silentLogger), copy);
  for (let i = 0; i < 200 && !pool.replicas[0]!.tracking?.active; i++) await new Promise((resolve) => setTimeout(resolve, 10));
  return { reader, copy, pool };
}

const topology = await startTopology({ replicas: 2, sentinels: 0, logger: silentLogger });
try {
  await topology.seed({ 'acct-prop': { enabled: true, balance: 5 } });
  const edges = await Promise.all(topology.replicas.map(edgeReader));
  try {
    const delays: number[][] = edges.map(() => []);
    for (let i = 0; i < changes; i++) {
      const blocked = i % 2 === 0;
      // Every edge holds a current copy before the change (as edges carrying calls do).
      for (const { reader } of edges) await reader.lookup('acct-prop');
      await topology.master.client.hset(accountKey('acct-prop'), 'credit_blocked', blocked ? '1' : '0');
      const written = performance.now();
      await Promise.all(
        edges.map(async ({ reader }, e) => {
          for (;;) {
            const seen = await reader.lookup('acct-prop');
            if (seen.outcome === 'found' && seen.account.creditBlocked === blocked) break;
            if (performance.now() - written > 5000) throw new Error(`edge ${e}: change ${i} not seen within 5 s`);
            await new Promise((resolve) => setImmediate(resolve));
          }
          delays[e]!.push(performance.now() - written);
        }),
      );
    }
    const perEdge = delays.map((d) => figuresOf(d)!);
    const hits = edges.reduce((s, e) => s + e.copy.hits, 0);
    const misses = edges.reduce((s, e) => s + e.copy.misses, 0);
    process.stdout.write(
      JSON.stringify({
        changes,
        edges: edges.length,
        delay_ms: perEdge.map((f) => ({ p50: f.p50, p99: f.p99, max: f.max })),
        p99_ms: Math.max(...perEdge.map((f) => f.p99)),
        local_copy_hit_rate: Math.round((hits / Math.max(1, hits + misses)) * 1000) / 1000,
      }) + '\n',
    );
  } finally {
    await Promise.all(edges.map((e) => e.pool.close()));
  }
} finally {
  await topology.stop();
}
