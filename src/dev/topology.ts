import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { encodeAccount, type AccountInput } from '../accounts/account.js';
import { CREATE_DATASET_LUA } from '../accounts/dataset.js';
import { reindexArgs } from '../calls/totals.js';
import { silentLogger, type Logger } from '../log.js';
import { onProcessExit } from './exit-cleanup.js';
import { freePort } from './ports.js';
import { RedisNode, withTimeout, type Address } from './redis-node.js';
import { parseInfo, waitUntil } from './redis-wire.js';
import { SentinelNode } from './sentinel-node.js';
import { loadSeedFile, type SeedAccounts } from './seed.js';
import { accountKey, DATASET_KEY } from '../redis/keys.js';

export type { Address } from './redis-node.js';
export { RedisNode } from './redis-node.js';
export { SentinelNode } from './sentinel-node.js';

export interface TopologyOptions {
  /** Replicas of the master (default 2). */
  replicas?: number;
  /** Sentinels (default 3; 0 means no Sentinel and no failover). */
  sentinels?: number;
  /** The name Sentinel monitors the master under (default 'credit-edge'). */
  masterName?: string;
  logger?: Logger;
  /** `replica-serve-stale-data` on the replicas (default true, Redis's default and the trap). */
  replicaServeStaleData?: boolean;
  /** Sentinel `down-after-milliseconds` (default 1000). */
  downAfterMs?: number;
  /** Sentinel `failover-timeout` (default 3000). */
  failoverTimeoutMs?: number;
  /**
   * How often Sentinel sends INFO to each node (default 1000; Sentinel's own default is 10000).
   * It bounds how long a thawed old master keeps claiming to be master before Sentinel demotes it.
   */
  sentinelInfoPeriodMs?: number;
}

export interface NodeDescription {
  name: string;
  host: string;
  port: number;
  pid: number | undefined;
  /** What the process is doing: running, frozen (SIGSTOP) or down. */
  state: 'running' | 'frozen' | 'down';
  /** From INFO replication, or 'unknown' when the node did not answer. */
  role: 'master' | 'replica' | 'unknown';
  linkStatus?: string;
  syncInProgress?: boolean;
  offset?: number;
  connectedReplicas?: number;
  keys?: number;
  linkCut?: boolean;
  /** Why the node could not be asked (LOADING, timeout, connection refused...). */
  error?: string;
}

export interface SentinelDescription {
  name: string;
  host: string;
  port: number;
  pid: number | undefined;
  master?: Address;
  flags?: string;
  replicas?: number;
  otherSentinels?: number;
  error?: string;
}

export interface TopologyDescription {
  masterName: string;
  /** The master as this topology last learned it (at start or waitForFailover). */
  master: Address;
  nodes: NodeDescription[];
  sentinels: SentinelDescription[];
}

const DESCRIBE_TIMEOUT_MS = 500;

/*
 * What the faults do, as measured on Redis 7.0.15 (see test/integration/topology.test.ts):
 * - restartFromEmpty({ holdSyncMs }): the replica answers nil (no error) for keys the master has,
 *   with master_link_status:down and master_sync_in_progress:1, for about holdSyncMs (the master's
 *   RDB child sleeps rdb-key-save-delay per key). Without a hold the window lasts a few ms here.
 * - makeLoading(ms): -LOADING for about ms, then the value.
 * - cutLink(): stale data (serve-stale-data yes) or -MASTERDOWN (no). A REPLICAOF to a dead port
 *   would not do: Sentinel points the replica back at the master within seconds (+fix-slave-config).
 * - freeze(): open sockets, no answers: only command timeouts notice.
 * - freezeMaster()/killMaster(): Sentinel fails over in about 2-3.5 s (down-after 1000 ms); a thawed
 *   old master keeps saying role:master until Sentinel's next INFO (sentinelInfoPeriodMs) demotes it.
 */

/**
 * A running set of local redis-server processes: a master, its replicas and Sentinels, each in its
 * own directory under one temp dir, all on 127.0.0.1. Roles move with failovers: `master` is the
 * node Sentinel last switched to, `replicas` every other data node (including a dead or frozen
 * old master).
 */
export class Topology {
  readonly masterName: string;
  readonly dir: string;
  readonly nodes: RedisNode[] = [];
  readonly sentinels: SentinelNode[] = [];
  private masterNode: RedisNode | undefined;
  private readonly logger: Logger;
  private unregisterExit: (() => void) | undefined;
  private stopping: Promise<void> | undefined;

  constructor(masterName: string, dir: string, logger: Logger) {
    this.masterName = masterName;
    this.dir = dir;
    this.logger = logger;
    // Removing the temp dir is the last thing the exit hook does (processes registered later die first).
    this.unregisterExit = onProcessExit(() => fs.rmSync(dir, { recursive: true, force: true }));
  }

  get master(): RedisNode {
    if (!this.masterNode) throw new Error('topology has no master yet');
    return this.masterNode;
  }

  get replicas(): RedisNode[] {
    return this.nodes.filter((n) => n !== this.masterNode);
  }

  /** For clients in Sentinel mode. */
  sentinelAddresses(): Address[] {
    return this.sentinels.map((s) => ({ host: s.host, port: s.port }));
  }

  /** The master as Sentinel reports it now (the first Sentinel that answers), or ours without Sentinel. */
  async currentMaster(): Promise<Address> {
    if (this.sentinels.length === 0) return { host: this.master.host, port: this.master.port };
    let lastError: unknown;
    for (const sentinel of this.sentinels) {
      if (!sentinel.process.isRunning) continue;
      try {
        return await sentinel.masterAddress();
      } catch (err) {
        lastError = err;
      }
    }
    throw new Error(`no Sentinel answered for ${this.masterName}: ${lastError instanceof Error ? lastError.message : 'none running'}`);
  }

  nodeAt(address: Address): RedisNode | undefined {
    return this.nodes.find((n) => n.port === address.port && n.host === address.host);
  }

  setMaster(node: RedisNode): void {
    this.masterNode = node;
  }

  /**
   * Writes accounts on the current master (each hash replaced: DEL + HSET in one transaction), and
   * the dataset marker when there is none (a seed declares a dataset), then WAITs until every
   * replica the master sees online has them. Throws if some did not acknowledge.
   */
  async seed(accounts: SeedAccounts | Record<string, AccountInput>): Promise<void> {
    const address = await this.currentMaster();
    const master = this.nodeAt(address) ?? this.master;
    const tx = master.client.multi();
    const n = Object.keys(accounts).length;
    // A seeded dataset is a real one: it gets the marker (created only if there is none).
    tx.eval(CREATE_DATASET_LUA, 1, DATASET_KEY, randomUUID(), 'seed', String(n));
    for (const [id, input] of Object.entries(accounts)) {
      tx.del(accountKey(id));
      tx.hset(accountKey(id), encodeAccount(input));
      // Like every writer of a balance: the account's runs-dry entry follows (src/calls/totals.ts).
      tx.eval(...reindexArgs(id, accountKey(id)));
    }
    await tx.exec();
    const { acknowledged, online } = await master.waitForReplicas(5000);
    if (acknowledged < online) throw new Error(`seed: only ${acknowledged} of ${online} replicas acknowledged`);
    this.logger.info({ accounts: Object.keys(accounts).length, replicas: acknowledged }, 'topology seeded');
  }

  /** seed() from a YAML or JSON file. */
  async seedFile(file: string): Promise<void> {
    await this.seed(loadSeedFile(file));
  }

  /** SIGKILLs the current master (a dead master: Sentinel sees refused connections). */
  async killMaster(): Promise<RedisNode> {
    const node = this.master;
    await node.kill();
    return node;
  }

  /**
   * Restarts the current master without its data (RedisNode.restartEmptyMaster), with Sentinel's
   * down-after raised meanwhile so that a slow restart on a busy machine is not taken for a dead
   * master: the fault is a lost dataset, not a failover. Resolves once every replica has resynced
   * (to nothing).
   */
  async restartMasterEmpty(): Promise<void> {
    await Promise.all(this.sentinels.map((s) => s.setDownAfter(60_000)));
    try {
      await this.master.restartEmptyMaster();
      for (const replica of this.replicas) await replica.waitForSync(30_000);
    } finally {
      await Promise.all(this.sentinels.map((s) => s.setDownAfter()));
    }
  }

  /** SIGSTOPs the current master (the incident's hung master: sockets open, no answers). */
  freezeMaster(): RedisNode {
    const node = this.master;
    node.freeze();
    return node;
  }

  /**
   * Resolves with the new master once Sentinel has switched (+switch-master) away from the master
   * this topology knows, and every running Sentinel reports it. The old master is left as it is
   * (dead or frozen). Call it right after the fault: a failover takes at least down-after.
   */
  async waitForFailover(timeoutMs = 30_000): Promise<Address> {
    if (this.sentinels.length === 0) throw new Error('waitForFailover: this topology has no Sentinel');
    const old = { host: this.master.host, port: this.master.port };
    const moved = (a: Address | undefined): a is Address => a !== undefined && (a.port !== old.port || a.host !== old.host);

    // The +switch-master message wakes the check at once; polling covers a message sent before we
    // subscribed. Sentinel only changes the address SENTINEL MASTER reports at the switch.
    const subscribers = this.sentinels.map((s) => {
      const sub = new Redis({ host: s.host, port: s.port, maxRetriesPerRequest: 1, retryStrategy: () => 200 });
      sub.on('error', () => undefined);
      return sub;
    });
    let wake: () => void = () => undefined;
    for (const sub of subscribers) {
      sub.on('message', (channel: string, message: string) => {
        if (channel === '+switch-master' && message.startsWith(this.masterName + ' ')) {
          this.logger.info({ message }, 'sentinel +switch-master');
          wake();
        }
      });
      sub.subscribe('+switch-master').catch(() => undefined);
    }
    try {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const agreed = await this.sentinelsAgreeOnSwitch(moved);
        if (agreed) {
          const node = this.nodeAt(agreed);
          if (node) this.masterNode = node;
          this.logger.info({ from: old, to: agreed }, 'failover done');
          return agreed;
        }
        if (Date.now() >= deadline) throw new Error(`no failover away from ${old.host}:${old.port} within ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 200);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    } finally {
      for (const sub of subscribers) sub.disconnect();
    }
  }

  /** The switched-to address if every running Sentinel reports the same moved master, not mid-failover. */
  private async sentinelsAgreeOnSwitch(moved: (a: Address | undefined) => a is Address): Promise<Address | undefined> {
    let agreed: Address | undefined;
    for (const sentinel of this.sentinels) {
      if (!sentinel.process.isRunning) continue;
      const state = await withTimeout(1000, () => sentinel.masterState()).catch(() => undefined);
      if (!state || (state.flags ?? '').includes('failover_in_progress')) return undefined;
      const address = { host: state.ip ?? '', port: Number(state.port) };
      if (!moved(address)) return undefined;
      if (agreed && agreed.port !== address.port) return undefined;
      agreed = address;
    }
    return agreed;
  }

  /** Roles, ports, pids and replication state of every process, for printing. Never hangs. */
  async describe(): Promise<TopologyDescription> {
    const nodes = await Promise.all(this.nodes.map((n) => this.describeNode(n)));
    const sentinels = await Promise.all(this.sentinels.map((s) => this.describeSentinel(s)));
    return { masterName: this.masterName, master: { host: this.master.host, port: this.master.port }, nodes, sentinels };
  }

  private async describeNode(node: RedisNode): Promise<NodeDescription> {
    const d: NodeDescription = { name: node.name, host: node.host, port: node.port, pid: node.pid, state: node.state, role: 'unknown' };
    if (node.isLinkCut) d.linkCut = true;
    if (node.state !== 'running') return d;
    try {
      // Bounded: a node in DEBUG SLEEP or CLIENT PAUSE must not stall printing.
      const result = await withTimeout(DESCRIBE_TIMEOUT_MS, async () => {
        const [repl, keys] = await Promise.all([node.client.info('replication'), node.client.dbsize()]);
        return { repl: parseInfo(repl), keys };
      });
      if (!result) {
        d.error = `no answer within ${DESCRIBE_TIMEOUT_MS} ms`;
        return d;
      }
      const { repl, keys } = result;
      d.role = repl.role === 'master' ? 'master' : repl.role === 'slave' ? 'replica' : 'unknown';
      d.keys = keys;
      d.offset = Number(repl.master_repl_offset ?? repl.slave_repl_offset ?? 0);
      if (d.role === 'replica') {
        d.linkStatus = repl.master_link_status;
        d.syncInProgress = repl.master_sync_in_progress === '1';
      } else {
        d.connectedReplicas = Number(repl.connected_slaves ?? 0);
      }
    } catch (err) {
      d.error = err instanceof Error ? err.message : String(err);
    }
    return d;
  }

  private async describeSentinel(sentinel: SentinelNode): Promise<SentinelDescription> {
    const d: SentinelDescription = { name: sentinel.name, host: sentinel.host, port: sentinel.port, pid: sentinel.pid };
    if (!sentinel.process.isRunning) return d;
    try {
      const state = await withTimeout(DESCRIBE_TIMEOUT_MS, () => sentinel.masterState());
      if (!state) {
        d.error = `no answer within ${DESCRIBE_TIMEOUT_MS} ms`;
        return d;
      }
      d.master = { host: state.ip ?? '', port: Number(state.port) };
      if (state.flags !== undefined) d.flags = state.flags;
      d.replicas = Number(state['num-slaves'] ?? 0);
      d.otherSentinels = Number(state['num-other-sentinels'] ?? 0);
    } catch (err) {
      d.error = err instanceof Error ? err.message : String(err);
    }
    return d;
  }

  /** PIDs of every process this topology has running now (for leak checks). */
  pids(): number[] {
    return [...this.nodes, ...this.sentinels].map((n) => n.pid).filter((p): p is number => p !== undefined);
  }

  /**
   * Stops everything: Sentinels first (so they do not fail over a master going down), then the
   * data nodes (thawed, SIGTERM, SIGKILL after a grace), then removes the temp dir. Idempotent.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.allSettled(this.sentinels.map((s) => s.stop()));
      await Promise.allSettled(this.nodes.map((n) => n.stop()));
      fs.rmSync(this.dir, { recursive: true, force: true });
      this.unregisterExit?.();
      this.unregisterExit = undefined;
      this.logger.info({ dir: this.dir }, 'topology stopped');
    })();
    return this.stopping;
  }
}

/** Tries to start a process on fresh free ports: another program may grab a port between freePort() and bind. */
async function startOnFreePort<T extends { start(): Promise<void>; process: { logTail(): string; stop(): Promise<void> } }>(
  make: (port: number) => T,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const item = make(await freePort());
    try {
      await item.start();
      return item;
    } catch (err) {
      await item.process.stop();
      if (attempt >= 3 || !/Address already in use/i.test(item.process.logTail())) throw err;
    }
  }
}

/**
 * Starts a master, `replicas` replicas and `sentinels` Sentinels on free ports of 127.0.0.1, and
 * resolves once every replica has `master_link_status:up` and every Sentinel knows the master,
 * all its replicas and all the other Sentinels (so a failover can start right away). On any
 * failure, whatever was started is stopped before the error is thrown.
 */
export async function startTopology(options: TopologyOptions = {}): Promise<Topology> {
  const replicaCount = options.replicas ?? 2;
  const sentinelCount = options.sentinels ?? 3;
  const masterName = options.masterName ?? 'credit-edge';
  const logger = (options.logger ?? silentLogger).child({ component: 'topology' });
  const serveStaleData = options.replicaServeStaleData ?? true;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credit-edge-redis-'));
  const topology = new Topology(masterName, dir, logger);
  const context = { master: () => topology.master };
  const started = Date.now();

  const makeNode = (index: number) => (port: number) => {
    const name = `redis-${index}`;
    const node = new RedisNode({ name, host: '127.0.0.1', port, dir: path.join(dir, name), logger, context, serveStaleData });
    return { process: node.process, node, start: () => node.start(index === 1 ? undefined : topology.master) };
  };

  try {
    const master = await startOnFreePort(makeNode(1));
    topology.nodes.push(master.node);
    topology.setMaster(master.node);

    const replicas = await Promise.all(Array.from({ length: replicaCount }, (_, i) => startOnFreePort(makeNode(i + 2))));
    for (const r of replicas) topology.nodes.push(r.node);
    await Promise.all(replicas.map((r) => r.node.waitForSync()));

    const quorum = Math.floor(sentinelCount / 2) + 1;
    const sentinels = await Promise.all(
      Array.from({ length: sentinelCount }, (_, i) =>
        startOnFreePort((port) => {
          const name = `sentinel-${i + 1}`;
          const sentinel = new SentinelNode({
            name, host: '127.0.0.1', port, dir: path.join(dir, name), logger, masterName,
            master: { host: master.node.host, port: master.node.port }, quorum,
            downAfterMs: options.downAfterMs ?? 1000,
            failoverTimeoutMs: options.failoverTimeoutMs ?? 3000,
            infoPeriodMs: options.sentinelInfoPeriodMs ?? 1000,
          });
          return { process: sentinel.process, sentinel, start: () => sentinel.start() };
        }),
      ),
    );
    for (const s of sentinels) topology.sentinels.push(s.sentinel);
    // Sentinels learn replicas from the master's INFO and each other from hello messages (every 2 s).
    await Promise.all(
      topology.sentinels.map((s) =>
        waitUntil(`${s.name} to know the master, ${replicaCount} replicas and ${sentinelCount - 1} other sentinels`, 15_000, async () => {
          const state = await s.masterState();
          const replicasOk = (await s.replicas()).filter((r) => (r.flags ?? '') === 'slave').length === replicaCount;
          return state.flags === 'master' && Number(state['num-slaves']) === replicaCount && Number(state['num-other-sentinels']) === sentinelCount - 1 && replicasOk
            ? true
            : undefined;
        }, 100),
      ),
    );
    logger.info({ dir, ms: Date.now() - started, master: master.node.port, replicas: replicaCount, sentinels: sentinelCount }, 'topology ready');
    return topology;
  } catch (err) {
    await topology.stop();
    throw err;
  }
}

