import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseCutOrder } from '../../src/calls/cut-orders.js';
import { CALL_END_LUA, CALL_KEY_COUNT, callEndArgs } from '../../src/calls/records.js';
import { edgeMember } from '../../src/calls/totals.js';
import { loadConfig } from '../../src/config/load.js';
import { readAudit } from '../../src/control/audit.js';
import { startControllerService } from '../../src/control/command.js';
import { freePort } from '../../src/engine/free-port.js';
import type { RunningController } from '../../src/control/start.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { AUDIT_STREAM, CONFIRM_BLOCKS_KEY, cutOrdersKey } from '../../src/redis/keys.js';
import { cli } from '../helpers/cli.js';
import { callRecord, controllerConfigInput, controllerOn, masterHash, sleep, testLogger, until, writeCalls } from '../helpers/controller.js';

/**
 * The controller's side of ending calls past their credit (controller.cut_calls), against a real
 * master: which calls it orders ended, where the orders go, what it audits, and what it never cuts.
 */

let topology: Topology;
let controller: RunningController | undefined;
const client = () => topology.master.client;
const cutsOn = { cut_calls: { enabled: true, grace_ms: 300 } };
const edgeA = { node: 'edge-a', instance: 'inst-a' };
const edgeB = { node: 'edge-b', instance: 'inst-b' };
const ordersOf = async (edge: { node: string; instance: string }) => client().hgetall(cutOrdersKey(edgeMember(edge.node, edge.instance)));
const blocked = async (account: string) => (await masterHash(topology, account)).credit_blocked === '1';

beforeAll(async () => {
  topology = await startTopology({ replicas: 1, sentinels: 1 });
}, 60_000);
afterEach(async () => {
  await controller?.stop();
  controller = undefined;
  await client().del(cutOrdersKey(edgeMember(edgeA.node, edgeA.instance)), cutOrdersKey(edgeMember(edgeB.node, edgeB.instance)), AUDIT_STREAM, CONFIRM_BLOCKS_KEY);
});
afterAll(async () => {
  await topology?.stop();
});

describe('the controller orders the calls of an account out of credit ended', () => {
  it('every call of it, on the edge process that carries it, once, with a cut audit entry each; the funded and the unknown are never cut', async () => {
    await topology.seed({ 'acct-dry': { enabled: true, balance: 1, rate: 1 }, 'acct-funded': { enabled: true, balance: 1000, rate: 1 } });
    // A balance that does not parse: the account is unknown, never judged out of credit.
    await client().hset('account:acct-garbled', 'enabled', '1', 'balance', 'lots', 'rate', '1');
    // acct-dry: 2 + 1 minutes at 1 per minute against a balance of 1: out of credit minutes ago.
    const dry = [callRecord('acct-dry', 'dry-1', 2, edgeA), callRecord('acct-dry', 'dry-2', 1, edgeB)];
    const others = [callRecord('acct-funded', 'funded-1', 2, edgeA), callRecord('acct-garbled', 'garbled-1', 5, edgeA)];
    await writeCalls(topology, [...dry, ...others]);

    controller = controllerOn(topology, 'ctl-cuts', cutsOn);
    await until('acct-dry blocked', 5000, () => blocked('acct-dry'));
    await until('both calls ordered ended', 5000, async () => Object.keys(await ordersOf(edgeA)).includes('dry-1') && Object.keys(await ordersOf(edgeB)).includes('dry-2'));
    const order = parseCutOrder((await ordersOf(edgeA))['dry-1']!);
    expect(order).toMatchObject({ account: 'acct-dry', controller: 'ctl-cuts' });
    expect(Math.abs(order!.decidedAt - Date.now())).toBeLessThan(10_000);

    await sleep(1000); // more rounds: nothing ordered twice, nothing else ordered
    expect(Object.keys(await ordersOf(edgeA))).toEqual(['dry-1']);
    expect(Object.keys(await ordersOf(edgeB))).toEqual(['dry-2']);
    const cuts = (await readAudit(client(), { limit: 100 })).filter((e) => e.action === 'cut');
    expect(cuts.map((e) => [e.account, JSON.parse(e.evidence).callId]).sort()).toEqual([
      ['acct-dry', 'dry-1'],
      ['acct-dry', 'dry-2'],
    ]);
    expect(JSON.parse(cuts[0]!.evidence)).toMatchObject({ graceMs: 300, balance: 1, calls: 2 });
    expect(cuts[0]!.evidence).toMatch(/"projected":-/);

    // The order goes with the call's record: the edge ending it (or the call ending) removes both.
    await client().eval(CALL_END_LUA, CALL_KEY_COUNT, ...callEndArgs('acct-dry', 'dry-1', Date.now(), edgeA));
    expect(Object.keys(await ordersOf(edgeA))).toEqual([]);
    for (const r of [dry[1]!, ...others]) await client().eval(CALL_END_LUA, CALL_KEY_COUNT, ...callEndArgs(r.account, r.callId, Date.now(), r));
    expect(Object.keys(await ordersOf(edgeB))).toEqual([]);
    await client().del('account:acct-garbled');
  }, 30_000);

  it('within the grace after running dry: blocked, not cut yet', async () => {
    await topology.seed({ 'acct-just-dry': { enabled: true, balance: 0.05, rate: 1 } });
    // 0.05 at 1 per minute: dry 3 s after the call started; the grace here is 60 s.
    await writeCalls(topology, [callRecord('acct-just-dry', 'just-1', 0.1, edgeA)]);
    controller = controllerOn(topology, 'ctl-grace', { cut_calls: { enabled: true, grace_ms: 60_000 } });
    await until('blocked', 5000, () => blocked('acct-just-dry'));
    await sleep(800);
    expect(await ordersOf(edgeA)).toEqual({});
    await client().eval(CALL_END_LUA, CALL_KEY_COUNT, ...callEndArgs('acct-just-dry', 'just-1', Date.now(), edgeA));
  }, 30_000);

  it('switched off in the config file it orders nothing; a reload of the running controller puts it in dry run (audited once, nothing ordered), then on', async () => {
    await topology.seed({ 'acct-dry-run': { enabled: true, balance: 1, rate: 1 } });
    await writeCalls(topology, [callRecord('acct-dry-run', 'dr-1', 3, edgeA)]);
    const dir = mkdtempSync(path.join(tmpdir(), 'credit-edge-cut-reload-'));
    const file = path.join(dir, 'credit-edge.yaml');
    const admin = `127.0.0.1:${await freePort()}`;
    const writeFile = (cut_calls: Record<string, unknown>) => writeFileSync(file, JSON.stringify(controllerConfigInput(topology, 'ctl-reload', { admin_listen: admin, cut_calls })));
    writeFile({ enabled: false });
    const service = await startControllerService(loadConfig(file).config, file, testLogger());
    try {
      await until('blocked', 5000, () => blocked('acct-dry-run'));
      await sleep(800);
      expect(await ordersOf(edgeA)).toEqual({});

      writeFile({ enabled: true, dry_run: true, grace_ms: 0 });
      expect((await cli(['reload', '--controller', '-c', file])).out).toBe('reloaded: applied controller.cut_calls\n');
      await until('a dry-run audit entry', 5000, async () => (await readAudit(client(), { limit: 100 })).some((e) => e.action === 'cut-dry-run'));
      await sleep(800);
      expect(await ordersOf(edgeA)).toEqual({});
      const entries = (await readAudit(client(), { limit: 100 })).filter((e) => e.action === 'cut-dry-run');
      expect(entries).toHaveLength(1);
      expect(entries[0]!.reason).toContain('dry run: not ended');

      writeFile({ enabled: true, grace_ms: 0 });
      expect(await service.reload()).toEqual({ ok: true, applied: ['controller.cut_calls'], needsRestart: [] });
      await until('the cut order', 5000, async () => Object.keys(await ordersOf(edgeA)).includes('dr-1'));
    } finally {
      await service.stop();
      rmSync(dir, { recursive: true, force: true });
      await client().eval(CALL_END_LUA, CALL_KEY_COUNT, ...callEndArgs('acct-dry-run', 'dr-1', Date.now(), edgeA));
    }
  }, 30_000);

  it('many accounts to cut at once: the breaker holds every cut and alerts; an operator confirms and they go through', async () => {
    const ids = Array.from({ length: 6 }, (_, i) => `acct-mass-${i}`);
    await topology.seed(Object.fromEntries(ids.map((id) => [id, { enabled: true, balance: 1, rate: 1 }])));
    // Blocked first by a controller that does not cut (below its block breaker), then all cuttable at once.
    controller = controllerOn(topology, 'ctl-mass', { cut_calls: { enabled: false }, breaker: { max_blocks: 10, min_accounts: 100 } });
    await writeCalls(topology, ids.map((id, i) => callRecord(id, `mass-${i}`, 3, edgeB)));
    await until('all blocked', 5000, async () => (await Promise.all(ids.map(blocked))).every(Boolean));
    await controller.stop();

    controller = controllerOn(topology, 'ctl-mass-2', { cut_calls: { enabled: true, grace_ms: 0 }, breaker: { max_blocks: 3, min_accounts: 100 } });
    await until('the cuts held', 5000, async () => (controller!.controller.lastReport?.cutsHeld.length ?? 0) === 6);
    expect(await ordersOf(edgeB)).toEqual({});
    expect((await controller.metrics.cutsHeld.get()).values[0]?.value).toBe(6);

    await client().set(CONFIRM_BLOCKS_KEY, 'operator-test', 'PX', 600_000);
    await until('cuts through once confirmed', 5000, async () => Object.keys(await ordersOf(edgeB)).length === 6);
    expect(await client().exists(CONFIRM_BLOCKS_KEY)).toBe(0);
    for (const [i, id] of ids.entries()) await client().eval(CALL_END_LUA, CALL_KEY_COUNT, ...callEndArgs(id, `mass-${i}`, Date.now(), edgeB));
  }, 30_000);
});
