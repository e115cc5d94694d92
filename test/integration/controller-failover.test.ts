import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAudit } from '../../src/control/audit.js';
import type { RunningController } from '../../src/control/start.js';
import { parseInfo } from '../../src/dev/redis-wire.js';
import { startTopology, type RedisNode, type Topology } from '../../src/dev/topology.js';
import { callRecord, controllerOn, masterHash, sleep, until, writeCalls } from '../helpers/controller.js';

/**
 * The incident, replayed against the controller: a slow master (DEBUG SLEEP), a replica resyncing
 * from empty, then a Sentinel failover while the old master hangs, and the old master thawed and
 * reachable, still claiming to be master until Sentinel's next look demotes it. The controller
 * must follow the new master at once, write nothing to the old one, and block no funded account.
 */

let topology: Topology;
let controller: RunningController;
const FUNDED = ['acct-f1', 'acct-f2', 'acct-f3'];
const WRITES = ['hset', 'hdel', 'xadd', 'sadd', 'srem', 'set', 'del', 'eval', 'evalsha', 'pexpire', 'exec'];

beforeAll(async () => {
  // Sentinel looks at the thawed old master only every 8 s: a long window in which it says role:master.
  topology = await startTopology({ replicas: 2, sentinels: 3, sentinelInfoPeriodMs: 8000 });
  await topology.seed(Object.fromEntries(FUNDED.map((id) => [id, { enabled: true, balance: 100, rate: 0.01 }])));
  await writeCalls(topology, FUNDED.flatMap((id) => [callRecord(id, `${id}-a`, 2), callRecord(id, `${id}-b`, 1)]));
  controller = controllerOn(topology, 'ctl-incident');
  await until('controller acting', 10_000, async () => controller.controller.isLeader);
}, 60_000);
afterAll(async () => {
  await controller?.stop();
  await topology?.stop();
});

async function writeCounts(node: RedisNode): Promise<Record<string, number>> {
  const stats = parseInfo(await node.client.info('commandstats'));
  return Object.fromEntries(WRITES.map((cmd) => [cmd, Number(/calls=(\d+)/.exec(stats[`cmdstat_${cmd}`] ?? '')?.[1] ?? 0)]));
}

describe('the incident, replayed', () => {
  it('slow master, resync, failover with the old master alive: follows the new master, writes nothing to the old, blocks no funded account', async () => {
    const old = topology.master;
    const oldAddress = `${old.host}:${old.port}`;

    // 1. The master slows down (fragmentation, in the incident) and a replica resyncs from empty.
    await old.slow(700);
    await sleep(900);
    await Promise.all([old.slow(700), topology.replicas[0]!.restartFromEmpty({ holdSyncMs: 800 })]);
    await sleep(1200);
    for (const id of FUNDED) expect((await masterHash(topology, id)).credit_blocked ?? '0', id).toBe('0');

    // 2. The master hangs; Sentinel fails over. Then the old master comes back, still saying master.
    old.freeze();
    const frozenAt = Date.now();
    const next = await topology.waitForFailover(20_000);
    const nextAddress = `${next.host}:${next.port}`;
    const switchedAt = Date.now();
    old.thaw();
    // Whatever was stuck in its socket buffers from before the switch runs now; count from here.
    await sleep(300);
    expect(parseInfo(await old.client.info('replication')).role).toBe('master');
    const before = await writeCounts(old);

    // 3. The controller is on the new master at once (failover detector), not minutes later.
    await until('controller on the new master', 3000, async () => controller.controller.lastReport?.master === nextAddress);
    const followedMs = Date.now() - switchedAt;

    // 4. An account runs dry after the switch: blocked on the new master, nothing on the old.
    await topology.seed({ 'acct-late': { enabled: true, balance: 1, rate: 1 } });
    await writeCalls(topology, [callRecord('acct-late', 'late-1', 5)]);
    await until('acct-late blocked on the new master', 3000, async () => (await masterHash(topology, 'acct-late')).credit_blocked === '1');
    await sleep(600); // a few more rounds (lease renewals) while the old master still claims master

    const oldRole = parseInfo(await old.client.info('replication')).role;
    const after = await writeCounts(old);
    expect(oldRole, 'Sentinel demoted the old master too early for the check: raise sentinelInfoPeriodMs').toBe('master');
    expect(after).toEqual(before);
    expect(await old.client.hget('account:acct-late', 'credit_blocked')).toBeNull();
    const oldAudit = await readAudit(old.client, { limit: 100 });
    expect(oldAudit.filter((e) => Date.parse(e.at) >= frozenAt)).toEqual([]);

    // 5. The audit on the new master names it; no funded account was blocked anywhere.
    const audit = await readAudit(topology.master.client, { limit: 100 });
    // (Its call is cut too, once the grace has passed: cut_calls is on by default.)
    expect(audit.filter((e) => e.action === 'block').map((e) => [e.action, e.account, e.master])).toEqual([['block', 'acct-late', nextAddress]]);
    expect(audit.filter((e) => e.action !== 'block').map((e) => [e.action, e.account, e.master])).toEqual(audit.some((e) => e.action === 'cut') ? [['cut', 'acct-late', nextAddress]] : []);
    for (const id of FUNDED) {
      expect((await masterHash(topology, id)).credit_blocked ?? '0', id).toBe('0');
      expect(await old.client.hget(`account:${id}`, 'credit_blocked'), id).toBeNull();
    }
    expect(oldAddress).not.toBe(nextAddress);
    expect(followedMs).toBeLessThan(3000);
  }, 60_000);
});
