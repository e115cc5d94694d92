import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREATE_DATASET_LUA } from '../../src/accounts/dataset.js';
import { connectMaster, setAccount } from '../../src/admin/account-command.js';
import { CALL_END_LUA, CALL_KEY_COUNT, CALL_START_LUA, callEndArgs, callStartArgs, encodeCallRecord } from '../../src/calls/records.js';
import { edgeMember, parseTotals } from '../../src/calls/totals.js';
import { startController, type RunningController } from '../../src/control/start.js';
import { expectedRunsDryAt } from '../../src/control/sweep.js';
import { totalsOf } from '../../src/control/projection.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { callRecord, controllerConfig, masterHash, sleep, until, writeCalls } from '../helpers/controller.js';
import { BLOCKED_RUNS_DRY_KEY, CALLS_INDEX_KEY, callsKey, DATASET_KEY, edgeCallsKey, EDGES_KEY, LAYOUT_KEY, LAYOUT_VERSION, LEGACY_KEYS, RUNS_DRY_KEY, totalsKey } from '../../src/redis/keys.js';

/**
 * The per-account call totals and the runs-dry index (src/calls/totals.ts) against a real master:
 * exact under replayed events, followed by `account set` at once, corrected by the sweep after a
 * direct edit, built or moved once from records of older layouts, and nothing judged without the
 * dataset marker.
 */

let topology: Topology;
const controllers: RunningController[] = [];
const client = () => topology.master.client;

/** A controller whose log lines are kept, to check what it says. */
function controllerWithLog(name: string, settings: Record<string, unknown>): { running: RunningController; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const running = startController(controllerConfig(topology, name, settings), pino({ level: 'debug' }, sink));
  controllers.push(running);
  return { running, lines };
}

async function stopAll(): Promise<void> {
  while (controllers.length > 0) await controllers.pop()!.stop();
}

const blocked = async (account: string) => (await masterHash(topology, account)).credit_blocked === '1';

beforeAll(async () => {
  topology = await startTopology({ replicas: 1, sentinels: 3 });
}, 60_000);
afterAll(async () => {
  await stopAll();
  await topology?.stop();
});

describe('call totals', () => {
  it('stay exact when a start or an end is applied twice, and match the records', async () => {
    await topology.seed({ 'acct-twice': { enabled: true, balance: 100, rate: 0.5 } });
    const a = callRecord('acct-twice', 'tw-1', 3, { rate: 1 });
    const b = callRecord('acct-twice', 'tw-2', 2);
    const c = callRecord('acct-twice', 'tw-3', 1, { rate: 0.25 });
    for (const r of [a, b, b, c, c, a]) await client().eval(CALL_START_LUA, CALL_KEY_COUNT, ...callStartArgs(r));
    const records = await client().hgetall(callsKey('acct-twice'));
    expect(Object.keys(records).sort()).toEqual(['tw-1', 'tw-2', 'tw-3']);
    const expected = totalsOf(records).totals;
    const stored = parseTotals(await client().hgetall(totalsKey('acct-twice')))!;
    expect(stored).toMatchObject({ calls: 3, bad: 0, unrated: 1 });
    expect(stored.rated).toBeCloseTo(1.25, 12);
    // Same sums (both relative to the earliest start).
    expect(stored.base).toBe(expected.base);
    expect(stored.ratedT).toBeCloseTo(expected.ratedT, 6);
    expect(stored.unratedT).toBeCloseTo(expected.unratedT, 6);
    expect(await client().hget(edgeCallsKey('edge-t:inst-t'), 'tw-2')).toBe('acct-twice');

    // An end replayed: removed and debited once.
    const endedAt = a.start + 60_000;
    expect(await client().eval(CALL_END_LUA, CALL_KEY_COUNT, ...callEndArgs('acct-twice', 'tw-1', endedAt))).toBe(1);
    expect(await client().eval(CALL_END_LUA, CALL_KEY_COUNT, ...callEndArgs('acct-twice', 'tw-1', endedAt))).toBe(0);
    expect(await client().hget('account:acct-twice', 'balance')).toBe('99.000000');
    const after = parseTotals(await client().hgetall(totalsKey('acct-twice')))!;
    expect(after).toMatchObject({ calls: 2, unrated: 1 });
    expect(after.rated).toBeCloseTo(0.25, 12);

    for (const id of ['tw-2', 'tw-3', 'tw-2']) await client().eval(CALL_END_LUA, CALL_KEY_COUNT, ...callEndArgs('acct-twice', id, undefined));
    // Nothing left: no totals, no index entry, no per-edge entry, not listed as having calls.
    expect(await client().exists(totalsKey('acct-twice'), callsKey('acct-twice'), edgeCallsKey('edge-t:inst-t'))).toBe(0);
    expect(await client().zscore(RUNS_DRY_KEY, 'acct-twice')).toBeNull();
    expect(await client().sismember(CALLS_INDEX_KEY, 'acct-twice')).toBe(0);
  });

  it('the runs-dry index says when the balance runs out', async () => {
    await topology.seed({ 'acct-when': { enabled: true, balance: 10, rate: 2 } });
    const r = callRecord('acct-when', 'when-1', 1);
    await writeCalls(topology, [r]);
    // 10 at 2 per minute: dry 5 minutes after the start.
    const written = Number(await client().zscore(RUNS_DRY_KEY, 'acct-when'));
    expect(written).toBeCloseTo(r.start + 5 * 60_000, 0);
    // The sweep's plain-read check computes the same time as the script (else it would re-run it every pass).
    const totals = parseTotals(await client().hgetall(totalsKey('acct-when')))!;
    expect(expectedRunsDryAt('10', '2', totals)).toBeCloseTo(written, 0);
    await client().eval(CALL_END_LUA, CALL_KEY_COUNT, ...callEndArgs('acct-when', 'when-1', undefined));
  });
});

describe('the controller on the index', () => {
  it('a top-up through `account set` lifts its block in the next rounds, without the sweep', async () => {
    const { running } = controllerWithLog('ctl-topup', { sweep_ms: 3_600_000 });
    await until('acting', 10_000, async () => running.controller.isLeader);
    await topology.seed({ 'acct-cli': { enabled: true, balance: 1, rate: 6 } });
    await writeCalls(topology, [callRecord('acct-cli', 'cli-1', 0.5)]);
    await until('acct-cli blocked', 3000, () => blocked('acct-cli'));
    expect(await client().zscore(BLOCKED_RUNS_DRY_KEY, 'acct-cli')).not.toBeNull();

    const master = await connectMaster(controllerConfig(topology, 'cli'));
    try {
      await setAccount(master, 'acct-cli', { set: { balance: '1000' }, unset: [] });
    } finally {
      await master.close();
    }
    await until('acct-cli unblocked', 3000, async () => !(await blocked('acct-cli')));
    expect((await running.metrics.sweepCorrections.get()).values.reduce((s, v) => s + v.value, 0)).toBe(0);
    await stopAll();
  });

  it('a balance edited directly on the master (no CLI) is picked up by the sweep, which reports it', async () => {
    // Cuts off: with them on, a blocked account with calls in progress is read every round (to
    // cut them), which sees the top-up before the sweep does.
    const { running, lines } = controllerWithLog('ctl-sweep', { sweep_ms: 1500, cut_calls: { enabled: false } });
    await until('acting', 10_000, async () => running.controller.isLeader);
    await topology.seed({ 'acct-billing': { enabled: true, balance: 1, rate: 6 } });
    await writeCalls(topology, [callRecord('acct-billing', 'bill-1', 0.5)]);
    await until('acct-billing blocked', 3000, () => blocked('acct-billing'));

    // A billing system tops up with a plain HSET: the index does not know until the sweep looks.
    await client().hset('account:acct-billing', 'balance', '500');
    await until('acct-billing unblocked', 6000, async () => !(await blocked('acct-billing')));
    const corrections = await running.metrics.sweepCorrections.get();
    expect(corrections.values.find((v) => v.labels.what === 'index')?.value).toBeGreaterThanOrEqual(1);
    expect(lines.some((l) => String(l.msg).startsWith('sweep: runs-dry index corrected') && (l.accounts as string[]).includes('acct-billing'))).toBe(true);
    await client().eval(CALL_END_LUA, CALL_KEY_COUNT, ...callEndArgs('acct-billing', 'bill-1', undefined));
    await stopAll();
  });

  it('records of layout 1 (under the old index name, no totals): the controller builds the totals once, says so, and acts on them', async () => {
    await topology.seed({ 'acct-old': { enabled: true, balance: 1, rate: 1 }, 'acct-old-funded': { enabled: true, balance: 100, rate: 1 } });
    const old = [callRecord('acct-old', 'old-1', 1), callRecord('acct-old', 'old-2', 1), callRecord('acct-old-funded', 'old-3', 1)];
    for (const r of old) {
      await client().hset(callsKey(r.account), r.callId, encodeCallRecord(r));
      await client().sadd(LEGACY_KEYS.accountsWithCalls.old, r.account);
    }
    await client().del(LAYOUT_KEY, CALLS_INDEX_KEY);
    expect(await client().exists(totalsKey('acct-old'))).toBe(0);

    const { lines } = controllerWithLog('ctl-migrate', { sweep_ms: 3_600_000 });
    await until('acct-old blocked', 5000, () => blocked('acct-old'));
    expect(await client().get(LAYOUT_KEY)).toBe(LAYOUT_VERSION);
    expect(await client().exists(LEGACY_KEYS.accountsWithCalls.old)).toBe(0);
    expect((await client().smembers(CALLS_INDEX_KEY)).sort()).toEqual(expect.arrayContaining(['acct-old', 'acct-old-funded']));
    expect(parseTotals(await client().hgetall(totalsKey('acct-old')))).toMatchObject({ calls: 2, unrated: 2 });
    expect(await client().hget(edgeCallsKey('edge-t:inst-t'), 'old-3')).toBe('acct-old-funded');
    const said = lines.filter((l) => String(l.msg).startsWith('migration: built per-account call totals'));
    expect(said).toHaveLength(1);
    expect(said[0]).toMatchObject({ from: '1', to: LAYOUT_VERSION, accounts: expect.any(Number), calls: expect.any(Number) });
    expect(said[0]!.calls as number).toBeGreaterThanOrEqual(3);
    expect(await blocked('acct-old-funded')).toBe(false);
    for (const r of old) await client().eval(CALL_END_LUA, CALL_KEY_COUNT, ...callEndArgs(r.account, r.callId, undefined));
    await stopAll();
  });

  it('layout 2 (the shared indexes under calls:accounts, calls:edges, calls:layout): moved once; an older edge writing them later is moved again; an account so named keeps its calls', async () => {
    const { accountsWithCalls, edges, layout } = LEGACY_KEYS;
    await topology.seed({ 'acct-two': { enabled: true, balance: 1, rate: 1 }, edges: { enabled: true, balance: 100, rate: 1 } });
    const two = callRecord('acct-two', 'two-1', 2);
    await client().eval(CALL_START_LUA, CALL_KEY_COUNT, ...callStartArgs(two));
    // What layout 2 held: the same data, the indexes under their old names.
    await client().rename(CALLS_INDEX_KEY, accountsWithCalls.old);
    await client().rename(EDGES_KEY, edges.old);
    await client().del(LAYOUT_KEY);
    await client().set(layout.old, '2');

    const { lines } = controllerWithLog('ctl-layout-2', { sweep_ms: 3_600_000 });
    await until('acct-two blocked', 5000, () => blocked('acct-two'));
    expect(await client().get(LAYOUT_KEY)).toBe(LAYOUT_VERSION);
    for (const k of [accountsWithCalls.old, edges.old, layout.old]) expect(await client().exists(k), k).toBe(0);
    expect(await client().sismember(CALLS_INDEX_KEY, 'acct-two')).toBe(1);
    expect(await client().sismember(EDGES_KEY, edgeMember(two.node, two.instance))).toBe(1);
    expect(lines.filter((l) => String(l.msg).startsWith('migration: moved the shared indexes'))).toHaveLength(1);
    expect(lines.some((l) => String(l.msg).startsWith('migration: built'))).toBe(false);

    // An edge of the older version, still running, adds to the old set: moved in the next round.
    await client().sadd(accountsWithCalls.old, 'acct-late');
    await until('the old name moved again', 3000, async () => (await client().exists(accountsWithCalls.old)) === 0);
    expect(await client().sismember(CALLS_INDEX_KEY, 'acct-late')).toBe(1);
    expect(lines.some((l) => String(l.msg).startsWith('migration: an edge of an older version'))).toBe(true);

    // The account named `edges`: its calls hash is `calls:edges`, and no migration touches it.
    const named = callRecord('edges', 'edges-1', 1);
    await client().eval(CALL_START_LUA, CALL_KEY_COUNT, ...callStartArgs(named));
    await sleep(1500);
    expect(await client().type(callsKey('edges'))).toBe('hash');
    expect(await client().hlen(callsKey('edges'))).toBe(1);
    expect(await blocked('edges')).toBe(false);

    await client().srem(CALLS_INDEX_KEY, 'acct-late');
    for (const r of [two, named]) await client().eval(CALL_END_LUA, CALL_KEY_COUNT, ...callEndArgs(r.account, r.callId, undefined));
    await stopAll();
  });
});

describe('the dataset marker', () => {
  it('FLUSHALL: with calls re-written and an account out of credit, nothing is judged or written until the marker is back', async () => {
    const { running, lines } = controllerWithLog('ctl-marker', { sweep_ms: 500 });
    await until('acting', 10_000, async () => running.controller.isLeader);
    await client().flushall();
    // The data comes back without its marker (a restore, a billing feed): an account out of credit, calls re-asserted.
    await client().hset('account:acct-lost', 'enabled', '1', 'balance', '1', 'rate', '1');
    await writeCalls(topology, [callRecord('acct-lost', 'lost-1', 5)]);
    await until('a round sees no marker', 3000, async () => running.controller.lastReport?.outcome === 'dataset-missing');
    const roundsBefore = (await running.metrics.rounds.get()).values.find((v) => v.labels.outcome === 'dataset-missing')?.value ?? 0;
    await until('more rounds without the marker', 3000, async () => ((await running.metrics.rounds.get()).values.find((v) => v.labels.outcome === 'dataset-missing')?.value ?? 0) >= roundsBefore + 3);
    expect(await blocked('acct-lost')).toBe(false);
    expect(await client().xlen('audit:credit')).toBe(0);
    expect((await running.metrics.datasetMissing.get()).values[0]?.value).toBe(1);
    const alerts = lines.filter((l) => l.level === 50 && l.alert === true && String(l.msg).startsWith('DATASET MARKER MISSING'));
    expect(alerts).toHaveLength(1);

    await client().eval(CREATE_DATASET_LUA, 1, DATASET_KEY, 'test-dataset', 'test', '1');
    await until('acct-lost blocked once the marker is back', 3000, () => blocked('acct-lost'));
    expect((await running.metrics.datasetMissing.get()).values[0]?.value).toBe(0);
    await sleep(10);
  });
});
