import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { Address } from './redis-node.js';
import { RedisProcess } from './redis-process.js';
import { pairsToMap } from './redis-wire.js';

export interface SentinelOptions {
  name: string;
  host: string;
  port: number;
  dir: string;
  logger: Logger;
  masterName: string;
  master: Address;
  quorum: number;
  downAfterMs: number;
  failoverTimeoutMs: number;
  /** SENTINEL DEBUG info-period (Sentinel's default 10000). */
  infoPeriodMs: number;
}

/** One `redis-server --sentinel` process watching one master, with an admin client. */
export class SentinelNode implements Address {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly process: RedisProcess;
  private readonly options: SentinelOptions;
  private admin: Redis | undefined;
  private closed = false;

  constructor(options: SentinelOptions) {
    this.options = options;
    this.name = options.name;
    this.host = options.host;
    this.port = options.port;
    const configFile = path.join(options.dir, 'sentinel.conf');
    this.process = new RedisProcess({ name: options.name, host: options.host, port: options.port, dir: options.dir, args: [configFile, '--sentinel'], logger: options.logger });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get client(): Redis {
    if (this.closed) throw new Error(`${this.name} is stopped`);
    if (!this.admin) {
      const client = new Redis({ host: this.host, port: this.port, commandTimeout: 3000, maxRetriesPerRequest: 1, retryStrategy: (times: number) => Math.min(times * 50, 500) });
      client.on('error', () => undefined);
      this.admin = client;
    }
    return this.admin;
  }

  /** Sentinel needs a writable config file: it records what it learns (replicas, peers, epochs). */
  async start(): Promise<void> {
    const o = this.options;
    fs.mkdirSync(o.dir, { recursive: true });
    const lines = [
      `port ${o.port}`,
      `bind ${o.host}`,
      `dir ${o.dir}`,
      `logfile ${this.process.logFile}`,
      'daemonize no',
      `sentinel monitor ${o.masterName} ${o.master.host} ${o.master.port} ${o.quorum}`,
      `sentinel down-after-milliseconds ${o.masterName} ${o.downAfterMs}`,
      `sentinel failover-timeout ${o.masterName} ${o.failoverTimeoutMs}`,
      `sentinel parallel-syncs ${o.masterName} 1`,
    ];
    fs.writeFileSync(path.join(o.dir, 'sentinel.conf'), lines.join('\n') + '\n');
    await this.process.start();
    // Sentinel's own timers (Redis 7 SENTINEL DEBUG): INFO every 10 s by default delays everything
    // it learns from INFO (new replicas, a thawed old master to demote) by up to 10 s, and hello
    // messages every 2 s slow down Sentinels finding each other at startup.
    await this.client.call('SENTINEL', ['DEBUG', 'info-period', String(o.infoPeriodMs), 'publish-period', '500']);
  }

  /** SENTINEL GET-MASTER-ADDR-BY-NAME: where this Sentinel says the master is. */
  /** Changes down-after-milliseconds of the watched master; without `ms`, back to the configured value. */
  async setDownAfter(ms?: number): Promise<void> {
    await this.client.call('SENTINEL', ['SET', this.options.masterName, 'down-after-milliseconds', String(ms ?? this.options.downAfterMs)]);
  }

  async masterAddress(): Promise<Address> {
    const reply = (await this.client.call('SENTINEL', ['GET-MASTER-ADDR-BY-NAME', this.options.masterName])) as [string, string] | null;
    if (!reply) throw new Error(`${this.name} does not know master ${this.options.masterName}`);
    return { host: reply[0], port: Number(reply[1]) };
  }

  /** SENTINEL MASTER: flags, num-slaves, num-other-sentinels, failover state... */
  async masterState(): Promise<Record<string, string>> {
    return pairsToMap(await this.client.call('SENTINEL', ['MASTER', this.options.masterName]));
  }

  /** SENTINEL REPLICAS: one field map per replica Sentinel knows. */
  async replicas(): Promise<Record<string, string>[]> {
    const reply = await this.client.call('SENTINEL', ['REPLICAS', this.options.masterName]);
    return Array.isArray(reply) ? reply.map(pairsToMap) : [];
  }

  async stop(): Promise<void> {
    this.closed = true;
    this.admin?.disconnect();
    this.admin = undefined;
    await this.process.stop();
  }
}
