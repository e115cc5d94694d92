import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTopology, type RedisNode, type Topology } from '../../src/dev/topology.js';
import { waitUntil } from '../../src/dev/redis-wire.js';
import { accountKey } from '../../src/redis/keys.js';

/**
 * The dev topology's faults must produce the real Redis conditions the edge is built to survive.
 * One topology serves every non-destructive fault (each test leaves it healthy); the failover
 * tests come last, one on that topology (frozen master) and one on its own (killed master).
 */

const SEED = fileURLToPath(new URL('../../config/demo-accounts.yaml', import.meta.url));
const KEY = accountKey('acct-ok');

/** HGET on a fresh connection: the value, or the error text (LOADING, MASTERDOWN, timeout). */
async function read(node: { port: number }, timeoutMs = 1000): Promise<{ value: string | null } | { error: string }> {
  const client = new Redis({ port: node.port, host: '127.0.0.1', enableReadyCheck: false, maxRetriesPerRequest: 0, commandTimeout: timeoutMs, retryStrategy: () => null, lazyConnect: true });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return { value: await client.hget(KEY, 'enabled') };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  } finally {
    client.disconnect();
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('dev topology with faults', () => {
  let topology: Topology;
  let replicaA: RedisNode;
  let replicaB: RedisNode;

  beforeAll(async () => {
    topology = await startTopology({ replicas: 2, sentinels: 3 });
    await topology.seedFile(SEED);
    [replicaA, replicaB] = topology.replicas as [RedisNode, RedisNode];
  });

  afterAll(async () => {
    await topology?.stop();
  });

  it('starts a master, replicas in sync and Sentinels that agree on the master', async () => {
    const d = await topology.describe();
    expect(d.nodes.map((n) => n.role)).toEqual(['master', 'replica', 'replica']);
    expect(d.nodes.filter((n) => n.role === 'replica').every((n) => n.linkStatus === 'up')).toBe(true);
    expect(d.sentinels).toHaveLength(3);
    for (const s of d.sentinels) expect(s).toMatchObject({ master: { port: topology.master.port }, replicas: 2, otherSentinels: 2 });
    expect(await topology.currentMaster()).toEqual({ host: '127.0.0.1', port: topology.master.port });
    for (const node of topology.nodes) expect(await read(node)).toEqual({ value: '1' });
    expect(await read(topology.master, 1000)).toEqual({ value: '1' });
    expect(await topology.master.client.hgetall(accountKey('acct-missing'))).toEqual({});
  });

  it('a replica restarted from empty answers nil for a key the master has until its sync is done', async () => {
    const oldPid = replicaA.pid;
    await replicaA.restartFromEmpty({ holdSyncMs: 1500 });
    expect(replicaA.pid).not.toBe(oldPid);
    const info = await replicaA.info('replication');
    expect(info.master_link_status).toBe('down');
    expect(info.master_sync_in_progress).toBe('1');
    // The trap: a plain nil, no error, for an account that exists.
    expect(await read(replicaA)).toEqual({ value: null });
    expect(await read(topology.master)).toEqual({ value: '1' });
    await replicaA.waitForSync(10_000);
    expect(await read(replicaA)).toEqual({ value: '1' });
  });

  it('a replica loading its dataset answers -LOADING, then the value', async () => {
    await replicaA.makeLoading(3000);
    const during = await read(replicaA);
    expect(during).toMatchObject({ error: expect.stringMatching(/^LOADING/) });
    expect((await replicaA.info('persistence')).loading).toBe('1');
    await replicaA.stopLoading();
    expect(await read(replicaA)).toEqual({ value: '1' });
  });

  it('a replica cut from its master serves stale data, or -MASTERDOWN with replica-serve-stale-data no', async () => {
    await replicaB.cutLink();
    expect((await replicaB.info('replication')).master_link_status).toBe('down');
    expect(await read(replicaB)).toEqual({ value: '1' }); // stale but served (Redis's default)
    await replicaB.setServeStaleData(false);
    expect(await read(replicaB)).toMatchObject({ error: expect.stringMatching(/^MASTERDOWN/) });
    // Sentinel leaves the cut alone: only replicaof is "fixed", and it is untouched.
    const known = await topology.sentinels[0]!.replicas();
    expect(known.find((r) => Number(r.port) === replicaB.port)?.['master-port']).toBe(String(topology.master.port));
    await replicaB.restoreLink();
    expect(await read(replicaB)).toEqual({ value: '1' });
    await replicaB.setServeStaleData(true);
  });

  it('a frozen replica times out commands, and answers again once thawed', async () => {
    // A client connected before the freeze, like the edge's: its socket stays open, no answer comes.
    const client = new Redis({ port: replicaB.port, host: '127.0.0.1', commandTimeout: 300, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    try {
      expect(await client.hget(KEY, 'enabled')).toBe('1');
      replicaB.freeze();
      const started = Date.now();
      await expect(client.hget(KEY, 'enabled')).rejects.toThrow(/timed out/i);
      expect(Date.now() - started).toBeLessThan(1000);
    } finally {
      replicaB.thaw();
      client.disconnect();
    }
    expect(await read(replicaB)).toEqual({ value: '1' });
  });

  it('DEBUG SLEEP and CLIENT PAUSE delay every client', async () => {
    await replicaB.slow(400);
    let started = Date.now();
    expect(await read(replicaB, 2000)).toEqual({ value: '1' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);

    await replicaB.pause(300);
    started = Date.now();
    expect(await read(replicaB, 2000)).toEqual({ value: '1' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  });

  it('freezing the master makes Sentinel fail over to a replica; the old one stays hung, then rejoins', async () => {
    const old = topology.freezeMaster();
    const oldPid = old.pid!;
    const started = Date.now();
    const promoted = await topology.waitForFailover(20_000);
    const took = Date.now() - started;
    expect([replicaA.port, replicaB.port]).toContain(promoted.port);
    expect(await topology.currentMaster()).toEqual(promoted);
    expect(topology.master.port).toBe(promoted.port);
    expect((await topology.master.info('replication')).role).toBe('master');
    expect(alive(oldPid)).toBe(true);
    expect(old.state).toBe('frozen');
    expect(took).toBeLessThan(15_000);

    // Thawed, the old master still believes it is master until Sentinel turns it into a replica.
    old.thaw();
    await waitUntil('old master to become a replica of the new one', 15_000, async () => {
      const info = await old.info('replication');
      return info.role === 'slave' && Number(info.master_port) === promoted.port ? true : undefined;
    }, 200);
  });

  it('stop() leaves no process and no temp dir behind', async () => {
    const pids = topology.pids();
    expect(pids).toHaveLength(6);
    await topology.stop();
    for (const pid of pids) expect(alive(pid)).toBe(false);
    expect(fs.existsSync(topology.dir)).toBe(false);
  });
});

describe('dev topology: killed master', () => {
  let topology: Topology;

  beforeAll(async () => {
    topology = await startTopology({ replicas: 1, sentinels: 3 });
    await topology.seed({ 'acct-ok': { enabled: true, balance: 1 } });
  });

  afterAll(async () => {
    await topology?.stop();
  });

  it('killing the master makes Sentinel promote the replica', async () => {
    const [replica] = topology.replicas as [RedisNode];
    const old = await topology.killMaster();
    expect(old.state).toBe('down');
    const promoted = await topology.waitForFailover(20_000);
    expect(promoted.port).toBe(replica.port);
    expect(await topology.currentMaster()).toEqual(promoted);
    // The new master takes writes and still has the data.
    await topology.master.client.hset(KEY, 'balance', '2');
    expect(await topology.master.client.hgetall(KEY)).toEqual({ enabled: '1', balance: '2' });
  });

  it('stop() kills every process', async () => {
    const pids = topology.pids();
    await topology.stop();
    for (const pid of pids) expect(alive(pid)).toBe(false);
  });
});
