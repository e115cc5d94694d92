import { createConnection, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { askSentinels } from '../../src/control/master.js';
import type { Topology } from '../../src/dev/topology.js';
import type { Logger } from '../../src/log.js';
import type { AuditRecord, ControllerWrite, CutRecord, FinalRecords, MasterEpoch } from './history.js';
import { accountOfKey, AUDIT_STREAM, CALLS_KEY_PREFIX, TOTALS_PREFIX } from '../../src/redis/keys.js';

/**
 * The Redis side of the soak's history, recorded from outside the product while it runs:
 * - which node was master from when: the first sign of a promotion, whichever comes first: a
 *   replica answering ROLE master (polled every 250 ms), or +promoted-slave / +switch-master from
 *   any Sentinel; and, apart, which node a majority of the Sentinels named (every 100 ms): the
 *   only view a client can fence on, late by the time the Sentinels take to agree;
 * - every write a controller's connection made on every node: MONITOR on each node, with the
 *   server's own timestamps, the client's name from CLIENT LIST, and a script's inner writes
 *   (MONITOR shows them as from "lua") credited to the client that called the script;
 * - the audit stream's blocks, unblocks and cuts, read from the current master every half second (a
 *   master that loses its data loses its stream; what was read stays here).
 */

const WRITES = new Set(['set', 'del', 'unlink', 'hset', 'hsetnx', 'hdel', 'hincrby', 'hincrbyfloat', 'hmset', 'xadd', 'xtrim', 'zadd', 'zrem', 'zincrby', 'sadd', 'srem', 'expire', 'pexpire', 'persist', 'incr', 'incrby', 'decr', 'decrby', 'rename', 'lpush', 'rpush']);
const SCRIPT_CALLS = new Set(['eval', 'evalsha', 'eval_ro', 'evalsha_ro', 'fcall']);
const CONTROLLER_CLIENT = /^credit-controller-/;

export interface RedisHistory {
  masters: MasterEpoch[];
  sentinelMasters: MasterEpoch[];
  controllerWrites: ControllerWrite[];
  audit: AuditRecord[];
  cuts: CutRecord[];
  /** Call records and totals left on the master now (at the end, after every call ended). */
  finalRecords(): Promise<FinalRecords>;
  stop(): Promise<void>;
}

export async function recordRedisHistory(topology: Topology, logger: Logger): Promise<RedisHistory> {
  const masters: MasterEpoch[] = [{ address: topology.master.address, fromMs: Date.now() }];
  const controllerWrites: ControllerWrite[] = [];
  const audit: AuditRecord[] = [];
  const cuts: CutRecord[] = [];
  const closers: (() => void)[] = [];
  let stopped = false;

  const newEpoch = (address: string) => {
    if (masters[masters.length - 1]!.address === address) return;
    masters.push({ address, fromMs: Date.now() });
    logger.info({ address }, 'soak: new master epoch');
  };
  const sentinelMasters: MasterEpoch[] = [{ address: topology.master.address, fromMs: Date.now() }];
  const askers = topology.sentinelAddresses().map((s) => {
    const asker = new Redis({ host: s.host, port: s.port, maxRetriesPerRequest: 1, commandTimeout: 500, retryStrategy: () => 200, connectionName: 'soak-history' });
    asker.on('error', () => undefined);
    return asker;
  });
  const sampleSentinels = async () => {
    const { majority } = await askSentinels(askers, topology.masterName);
    if (majority !== undefined && sentinelMasters[sentinelMasters.length - 1]!.address !== majority) sentinelMasters.push({ address: majority, fromMs: Date.now() });
  };
  const sentinelTimer = setInterval(() => void sampleSentinels(), 100);
  closers.push(() => {
    clearInterval(sentinelTimer);
    for (const a of askers) a.disconnect();
  });
  for (const s of topology.sentinelAddresses()) {
    const sub = new Redis({ host: s.host, port: s.port, maxRetriesPerRequest: null, retryStrategy: () => 200, connectionName: 'soak-history' });
    sub.on('error', () => undefined);
    sub.on('message', (channel: string, message: string) => {
      const w = message.split(' ');
      // +switch-master <name> <old ip> <old port> <new ip> <new port>
      if (channel === '+switch-master' && w[0] === topology.masterName) newEpoch(`${w[3]}:${w[4]}`);
      // +promoted-slave slave <name> <ip> <port> @ <master name> <ip> <port>
      if (channel === '+promoted-slave' && w[5] === topology.masterName) newEpoch(`${w[2]}:${w[3]}`);
    });
    await sub.subscribe('+switch-master', '+promoted-slave');
    closers.push(() => sub.disconnect());
  }

  for (const node of [topology.master, ...topology.replicas]) {
    const address = node.address;
    const names = new Map<string, string>();
    const refreshNames = async (admin: Redis) => {
      const list = (await admin.call('CLIENT', ['LIST'])) as string;
      for (const line of list.split('\n')) {
        const addr = /\baddr=(\S+)/.exec(line)?.[1];
        const name = /\bname=(\S*)/.exec(line)?.[1];
        if (addr) names.set(addr, name ?? '');
      }
    };
    const admin = new Redis({ host: node.host, port: node.port, maxRetriesPerRequest: 1, retryStrategy: () => 200, connectionName: 'soak-history', lazyConnect: true });
    admin.on('error', () => undefined);
    // Names are read every 500 ms; a line from a client not yet named waits for the next read.
    let pending: { atMs: number; source: string; command: string; scriptOf?: string }[] = [];
    let lastScriptCaller = '';
    const settle = (final: boolean) => {
      const still: typeof pending = [];
      for (const p of pending) {
        const client = names.get(p.scriptOf ?? p.source);
        if (client === undefined && !final) {
          still.push(p);
          continue;
        }
        if (client !== undefined && CONTROLLER_CLIENT.test(client)) controllerWrites.push({ node: address, atMs: p.atMs, client, command: p.command });
      }
      pending = still;
    };
    // ROLE every 250 ms: a replica turning master is a promotion (a failover's REPLICAOF NO ONE),
    // often seconds before Sentinel publishes the switch.
    let lastRole = '';
    const roleTimer = setInterval(() => {
      admin
        .call('ROLE')
        .then((reply) => {
          const role = String((reply as unknown[])[0]);
          if (role === 'master' && lastRole === 'slave') newEpoch(address);
          lastRole = role;
        })
        .catch(() => undefined);
    }, 250);
    const namer = setInterval(() => {
      refreshNames(admin)
        .then(() => settle(false))
        .catch(() => undefined);
    }, 500);
    closers.push(() => {
      clearInterval(roleTimer);
      clearInterval(namer);
      settle(true);
      admin.disconnect();
    });

    const monitor = watchMonitor(node.host, node.port, () => stopped, (line) => {
      // +1700000000.123456 [0 127.0.0.1:51234] "HSET" "key" ...   (or [0 lua] inside a script)
      const m = /^\+(\d+\.\d+) \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line);
      if (!m) return;
      const [, time, source, name] = m;
      const command = name!.toLowerCase();
      if (SCRIPT_CALLS.has(command)) lastScriptCaller = source!;
      if (!WRITES.has(command)) return;
      pending.push({ atMs: Number(time) * 1000, source: source!, command, ...(source === 'lua' && { scriptOf: lastScriptCaller }) });
    });
    closers.push(() => monitor.close());
  }

  // The audit stream, through Sentinel to whichever node is master.
  const master = new Redis({
    sentinels: topology.sentinelAddresses(),
    name: topology.masterName,
    maxRetriesPerRequest: 1,
    commandTimeout: 1000,
    connectionName: 'soak-history',
    sentinelRetryStrategy: () => 200,
    retryStrategy: () => 200,
    failoverDetector: true,
  });
  master.on('error', () => undefined);
  let lastId = '0-0';
  const readAudit = async () => {
    const entries = await master.xrange(AUDIT_STREAM, `(${lastId}`, '+', 'COUNT', 1000);
    for (const [id, fields] of entries) {
      lastId = id;
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
      if (f.action === 'cut') {
        const evidence = parseEvidence(f.evidence);
        cuts.push({ atMs: Number(id.split('-')[0]), account: f.account ?? '', callId: String(evidence.callId ?? ''), edge: String(evidence.edge ?? ''), controller: f.controller ?? '' });
        continue;
      }
      if (f.action !== 'block' && f.action !== 'unblock') continue;
      audit.push({ atMs: Number(id.split('-')[0]), action: f.action, account: f.account ?? '', by: (f.controller ?? '').startsWith('operator') ? 'operator' : 'controller' });
    }
  };
  const auditTimer = setInterval(() => void readAudit().catch(() => undefined), 500);
  closers.push(() => clearInterval(auditTimer));

  return {
    masters,
    sentinelMasters,
    controllerWrites,
    audit,
    cuts,
    async finalRecords() {
      await readAudit().catch((err: unknown) => logger.warn({ err }, 'soak: last audit read failed'));
      const leaked: FinalRecords['leaked'] = [];
      const ghosts: FinalRecords['ghosts'] = [];
      const counts = new Map<string, number>();
      for (const key of await scanAll(master, `${CALLS_KEY_PREFIX}*`)) {
        // The shared keys under the same prefix (indexes, per-edge lists) belong to no account.
        const account = accountOfKey(key)?.id;
        if (account === undefined || (await master.type(key)) !== 'hash') continue;
        const callIds = await master.hkeys(key);
        counts.set(account, callIds.length);
        for (const callId of callIds) leaked.push({ account, callId });
      }
      for (const key of await scanAll(master, `${TOTALS_PREFIX}*`)) {
        const account = key.slice(TOTALS_PREFIX.length);
        const calls = Number((await master.hget(key, 'calls')) ?? '0');
        if (calls !== (counts.get(account) ?? 0)) ghosts.push({ account, detail: `totals count ${calls} calls in progress, the records ${counts.get(account) ?? 0}` });
      }
      return { leaked, ghosts };
    },
    async stop() {
      stopped = true;
      for (const close of closers) close();
      master.disconnect();
    },
  };
}

async function scanAll(client: Redis, match: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await client.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}

/**
 * MONITOR on one node over a plain socket (one line per command the server runs, with its own
 * timestamp), connected again whenever the node restarts. ioredis' monitor mode does not survive
 * a node killed under it.
 */
function watchMonitor(host: string, port: number, stopped: () => boolean, onLine: (line: string) => void): { close(): void } {
  let socket: Socket | undefined;
  const connect = () => {
    if (stopped()) return;
    let buffered = '';
    const s = createConnection({ host, port });
    socket = s;
    s.setEncoding('utf8');
    s.on('connect', () => s.write('CLIENT SETNAME soak-monitor\r\nMONITOR\r\n'));
    s.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\r\n')) >= 0) {
        onLine(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 2);
      }
    });
    s.on('error', () => undefined);
    s.on('close', () => setTimeout(connect, 200));
  };
  connect();
  return { close: () => socket?.destroy() };
}

/** An audit entry's evidence (JSON); {} when it does not parse. */
export function parseEvidence(raw: string | undefined): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(raw ?? '');
    return v !== null && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
