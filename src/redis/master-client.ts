import { Redis } from 'ioredis';

export interface MasterClientOptions {
  sentinels: { host: string; port: number }[];
  masterName: string;
  password?: string;
  /** Every command, and every Sentinel query, fails after this long. */
  timeoutMs: number;
  connectionName: string;
}

/**
 * A connection to whatever node Sentinel names master now, for everything that writes (the
 * credit controller, the edge's call records, the operator's CLI). The incident's second bug was
 * a writer left on the old master, so: Sentinel's failover detector (+switch-master moves it even
 * when the old master hangs instead of closing), short timeouts everywhere, and no offline queue
 * (a write that cannot go now is not done; callers that need a queue keep their own, bounded).
 */
export function sentinelMasterClient(o: MasterClientOptions): Redis {
  return new Redis({
    sentinels: o.sentinels,
    name: o.masterName,
    role: 'master',
    password: o.password,
    failoverDetector: true,
    // A hung old master never closes its side: do not wait the default 2 s for it to.
    disconnectTimeout: 200,
    connectionName: o.connectionName,
    commandTimeout: o.timeoutMs,
    connectTimeout: Math.max(o.timeoutMs, 1000),
    sentinelCommandTimeout: o.timeoutMs,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    keepAlive: 1000,
    retryStrategy: (attempt) => Math.min(100 * attempt, 1000),
    sentinelRetryStrategy: (attempt) => Math.min(100 * attempt, 1000),
    sentinelReconnectStrategy: (attempt: number) => Math.min(100 * attempt, 1000),
  });
}
