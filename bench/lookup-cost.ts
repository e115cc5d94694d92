import { ReplicaPool } from '../src/accounts/replica-pool.js';
import { DATASET_READ_FIELDS } from '../src/accounts/dataset.js';
import { DatasetWatch } from '../src/accounts/dataset-watch.js';
import { AccountReader } from '../src/accounts/reader.js';
import { startTopology } from '../src/dev/topology.js';
import { silentLogger } from '../src/log.js';
import { DATASET_KEY } from '../src/redis/keys.js';

/**
 * What one account lookup costs, against the floor: sequential round trips to one local replica
 * through ioredis, averaged (PING and a bare HGETALL, the lookup's MULTI ROLE HGETALL HLEN EXEC,
 * and the whole AccountReader.lookup()).
 *   npm run -s build && node dist/bench/lookup-cost.js [iterations]
 */
const iterations = Number(process.argv[2] ?? 5000);
const topology = await startTopology({ replicas: 1, sentinels: 0, logger: silentLogger });
try {
  await topology.seed({ 'acct-cost': { enabled: true, balance: 5 } });
  const replica = topology.replicas[0]!;
  const pool = new ReplicaPool([{ host: replica.host, port: replica.port }], { probeIntervalMs: 250, probeTimeoutMs: 250, connectTimeoutMs: 1000, logger: silentLogger });
  try {
    await pool.waitInSync(1);
    const reader = new AccountReader(pool, { hedgeDelayMs: 3, replicaTimeoutMs: 10 }, new DatasetWatch(silentLogger));
    const client = pool.replicas[0]!.client;
    const time = async (label: string, once: () => Promise<unknown>) => {
      for (let i = 0; i < 500; i++) await once();
      const start = process.hrtime.bigint();
      for (let i = 0; i < iterations; i++) await once();
      const us = Number(process.hrtime.bigint() - start) / iterations / 1000;
      process.stdout.write(`${label.padEnd(34)} ${us.toFixed(1)} us\n`);
    };
    await time('PING', () => client.ping());
    await time('HGETALL', () => client.hgetall('account:acct-cost'));
    await time('MULTI ROLE HGETALL HLEN EXEC', () => client.multi().role().hgetall('account:acct-cost').hlen('calls:acct-cost').exec());
    await time('MULTI ROLE HGETALL HLEN HMGET EXEC', () => client.multi().role().hgetall('account:acct-cost').hlen('calls:acct-cost').hmget(DATASET_KEY, ...DATASET_READ_FIELDS).exec());
    await time('AccountReader.lookup()', () => reader.lookup('acct-cost'));
  } finally {
    await pool.close();
  }
} finally {
  await topology.stop();
}
