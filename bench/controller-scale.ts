import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { CREATE_DATASET_LUA } from '../src/accounts/dataset.js';
import { callEndArgs, callStartArgs, defineCallScripts, type CallRecord, type CallScripts } from '../src/calls/records.js';
import { reindexKeysArgs } from '../src/calls/totals.js';
import { parseConfig } from '../src/config/load.js';
import type { RoundReport } from '../src/control/controller.js';
import { startController, type RunningController } from '../src/control/start.js';
import { parseInfo } from '../src/dev/redis-wire.js';
import { startTopology, type Topology } from '../src/dev/topology.js';
import type { Logger } from '../src/log.js';
import { prng } from './accounts.js';
import { accountKey, AUDIT_STREAM, BLOCKED_INDEX_KEY, DATASET_KEY, edgeAliveKey, LAYOUT_KEY, LAYOUT_VERSION } from '../src/redis/keys.js';

/**
 * `npm run bench -- controller-scale --accounts N --calls M`: the credit controller at carrier
 * scale. Seeds N accounts and M calls in progress through the edge's own write path (the call
 * start Lua, pipelined, as CallRecorder sends it), from four edge nodes. A share of the accounts
 * (--dry-share) get a balance that runs out at a known moment during the run; all others are far
 * from it. Then an acting controller and a standby run for --duration seconds against a master,
 * a replica and three Sentinels (all real redis-server processes), and the figures come from the
 * master itself: its CPU (INFO cpu), and the audit stream, whose entry ids are the master's clock
 * at the block's EXEC.
 */

export interface ScaleOptions {
  accounts: number;
  calls: number;
  durationS: number;
  dryShare: number;
  roundMs: number;
  outDir: string;
}

export interface ScaleSummary {
  profile: 'controller-scale';
  started_at: string;
  accounts: number;
  calls: number;
  duration_s: number;
  round_ms: number;
  rounds: number;
  round_p50_ms: number | null;
  round_p99_ms: number | null;
  round_max_ms: number | null;
  /** The reconciliation sweep's slice after each round (same loop, timed apart). */
  sweep_step_p50_ms: number | null;
  sweep_step_p99_ms: number | null;
  /** The master's CPU seconds per wall second while the controllers ran (INFO cpu, sys + user). */
  master_cpu_share: number;
  /** The same over a few seconds before they started: what the master spends on its own. */
  master_cpu_share_idle: number;
  blocks_expected: number;
  blocks_done: number;
  wrong_blocks: number;
  /** From the moment an account's projection reaches zero to its block's EXEC on the master. */
  block_delay_p50_ms: number | null;
  block_delay_p99_ms: number | null;
  block_delay_max_ms: number | null;
  seed_seconds: number;
  /** The edge's cost of one call event on the master: one command (EVALSHA), its µs (INFO commandstats). */
  edge_event: { commands_per_event: number; start_us: number; end_us: number };
  master_used_memory_mb: number;
  standby_rounds: number;
  host: { cpus: number; loadavg_start: number[]; loadavg_end: number[]; node: string };
  targets: Record<string, { target: string; value: number | null; met: boolean | null }>;
  results_dir: string;
}

const NODES = ['edge-a', 'edge-b', 'edge-c', 'edge-d'];
const RATE = 0.012;
const PIPELINE = 2000;

const quantile = (sorted: number[], q: number): number | null => (sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!);
const r1 = (n: number | null) => (n === null ? null : Math.round(n * 10) / 10);

async function cpuSeconds(client: Redis): Promise<number> {
  const info = parseInfo(await client.info('cpu'));
  return Number(info.used_cpu_sys) + Number(info.used_cpu_user);
}

async function evalshaStats(client: Redis): Promise<{ calls: number; usec: number }> {
  const line = parseInfo(await client.info('commandstats')).cmdstat_evalsha ?? '';
  return { calls: Number(/calls=(\d+)/.exec(line)?.[1] ?? 0), usec: Number(/usec=(\d+)/.exec(line)?.[1] ?? 0) };
}

type Scripted = Redis & CallScripts;

export async function runControllerScale(o: ScaleOptions, note: (line: string) => void): Promise<ScaleSummary> {
  const startedAt = new Date();
  const runDir = path.join(o.outDir, `controller-scale-${startedAt.toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(runDir, { recursive: true });
  const loadStart = os.loadavg();
  const logDest = pino.destination({ dest: path.join(runDir, 'controller.log'), sync: false, minLength: 8192 });
  const logger: Logger = pino({ level: 'info', base: { service: 'credit-edge' } }, logDest);

  let topology: Topology | undefined;
  let client: Scripted | undefined;
  const controllers: RunningController[] = [];
  let liveness: NodeJS.Timeout | undefined;
  try {
    topology = await startTopology({ replicas: 1, sentinels: 3, logger });
    const master = topology.master;
    // As the edge's CallRecorder sends them: EVALSHA of the call scripts, pipelined.
    client = defineCallScripts(new Redis({ host: master.host, port: master.port, lazyConnect: false }));
    const c = client;
    note(`topology up (master :${master.port}, 1 replica, 3 Sentinels); seeding ${o.accounts} accounts and ${o.calls} calls`);

    // --- seed: accounts, then calls through the edge's Lua, then the dry accounts' balances.
    const seedStart = Date.now();
    const rand = prng(11);
    const ids = Array.from({ length: o.accounts }, (_, i) => `cs-${String(i).padStart(7, '0')}`);
    await c.eval(CREATE_DATASET_LUA, 1, DATASET_KEY, randomUUID(), 'bench', String(o.accounts));
    await c.set(LAYOUT_KEY, LAYOUT_VERSION); // written by the new Lua from the first record: nothing to migrate
    for (let i = 0; i < ids.length; i += PIPELINE) {
      const p = c.pipeline();
      for (const id of ids.slice(i, i + PIPELINE)) p.hset(accountKey(id), 'enabled', '1', 'balance', '100000.00', 'rate', String(RATE));
      await p.exec();
    }
    const instances = new Map(NODES.map((n) => [n, `bench-${n}-${randomUUID().slice(0, 8)}`]));
    const renewLiveness = async () => {
      const p = c.pipeline();
      for (const [node, instance] of instances) p.set(edgeAliveKey(node), instance, 'PX', 60_000);
      await p.exec();
    };
    await renewLiveness();
    // Per account: sum of rates and of rate x start, to know when its balance runs out.
    const spendOf = new Map<string, { rate: number; rateStart: number }>();
    const evalBefore = await evalshaStats(c);
    const callsSeedStart = Date.now();
    for (let i = 0; i < o.calls; i += PIPELINE) {
      const p = c.pipeline() as unknown as Scripted & { exec(): Promise<unknown> };
      for (let j = i; j < Math.min(o.calls, i + PIPELINE); j++) {
        const account = ids[j % ids.length]!;
        const node = NODES[j % NODES.length]!;
        const record: CallRecord = { callId: `cs-call-${j}@bench`, account, start: callsSeedStart - Math.floor(rand() * 30 * 60_000), node, instance: instances.get(node)!, rate: RATE };
        const spend = spendOf.get(account) ?? { rate: 0, rateStart: 0 };
        spend.rate += RATE;
        spend.rateStart += RATE * record.start;
        spendOf.set(account, spend);
        p.callStart(...callStartArgs(record));
      }
      await p.exec();
      if ((i / PIPELINE) % 50 === 0) note(`seeded ${Math.min(o.calls, i + PIPELINE)} calls`);
    }
    const evalAfter = await evalshaStats(c);
    const startUs = (evalAfter.usec - evalBefore.usec) / Math.max(1, evalAfter.calls - evalBefore.calls);

    // The per-event cost of an end (and of a start on a busy account), on a scratch account.
    const scratch: CallRecord[] = Array.from({ length: 2000 }, (_, j) => ({ callId: `scratch-${j}`, account: 'cs-scratch', start: Date.now() - 60_000, node: NODES[0]!, instance: instances.get(NODES[0]!)!, rate: RATE }));
    await c.hset(accountKey('cs-scratch'), 'enabled', '1', 'balance', '1000000.00', 'rate', String(RATE));
    {
      const p = c.pipeline() as unknown as Scripted & { exec(): Promise<unknown> };
      for (const r of scratch) p.callStart(...callStartArgs(r));
      await p.exec();
    }
    const endBefore = await evalshaStats(c);
    {
      const p = c.pipeline() as unknown as Scripted & { exec(): Promise<unknown> };
      for (const r of scratch) p.callEnd(...callEndArgs(r.account, r.callId, Date.now(), r));
      await p.exec();
    }
    const endAfter = await evalshaStats(c);
    const endUs = (endAfter.usec - endBefore.usec) / Math.max(1, endAfter.calls - endBefore.calls);

    const ack = await master.waitForReplicas(60_000);
    const seedSeconds = (Date.now() - seedStart) / 1000;
    note(`seeded in ${seedSeconds.toFixed(1)} s (replicas acknowledged: ${ack.acknowledged}/${ack.online}); call start ${startUs.toFixed(1)} us, call end ${endUs.toFixed(1)} us on the master`);

    // Dry accounts: a balance that the calls in progress use up at a chosen moment of the run.
    const runStart = Date.now() + 5000; // after the idle measurement below
    const runEnd = runStart + o.durationS * 1000;
    const dryAt = new Map<string, number>();
    for (const id of ids) {
      if (rand() >= o.dryShare || !spendOf.has(id)) continue;
      dryAt.set(id, runStart + 2000 + rand() * Math.max(0, o.durationS * 1000 - 4000 - 2 * o.roundMs));
    }
    {
      const p = c.pipeline();
      for (const [id, at] of dryAt) {
        const { rate, rateStart } = spendOf.get(id)!;
        const balance = (rate * at - rateStart) / 60_000;
        // As `account set` writes it: the balance, then its runs-dry entry recomputed.
        p.hset(accountKey(id), 'balance', balance.toFixed(6));
        (p as unknown as CallScripts).reindexAccount(...reindexKeysArgs(id));
      }
      await p.exec();
      // The exact moment the projection (6 decimals, as written) reaches zero.
      for (const [id] of dryAt) {
        const written = Number((await c.hget(accountKey(id), 'balance')) ?? 0);
        const { rate, rateStart } = spendOf.get(id)!;
        dryAt.set(id, (written * 60_000 + rateStart) / rate);
      }
    }
    spendOf.clear();
    note(`${dryAt.size} accounts run dry during the run; measuring the master idle for 4 s`);
    liveness = setInterval(() => void renewLiveness().catch(() => undefined), 5000);

    const idleCpu0 = await cpuSeconds(c);
    const idleT0 = Date.now();
    await new Promise((r) => setTimeout(r, Math.max(1000, runStart - Date.now() - 200)));
    const idleShare = (await cpuSeconds(c)) - idleCpu0;
    const idleWall = (Date.now() - idleT0) / 1000;

    // --- the controllers: one acts, one stands by.
    const config = (name: string) =>
      parseConfig(
        JSON.stringify({
          controller: { name, round_ms: o.roundMs, breaker: { max_blocks: 1_000_000, max_share: 1 } },
        }),
        '(bench controller-scale)',
      );
    const roundMs: number[] = [];
    const sweepMs: number[] = [];
    let standbyRounds = 0;
    // Each round's own timing (fence to write, then the sweep's slice), as the controller reports it.
    const wrap = (running: RunningController) => {
      const ctl = running.controller as unknown as { round(): Promise<RoundReport> };
      const original = ctl.round.bind(ctl);
      ctl.round = async () => {
        const report = await original();
        if (report.outcome === 'acted') {
          roundMs.push(report.roundMs ?? NaN);
          if (report.sweepMs !== undefined) sweepMs.push(report.sweepMs);
        } else if (report.outcome === 'standby') standbyRounds++;
        return report;
      };
    };
    const cpu0 = await cpuSeconds(c);
    const t0 = Date.now();
    for (const name of ['ctl-scale-a', 'ctl-scale-b']) {
      const running = startController(config(name), logger.child({ component: 'controller', controller: name }), { sentinels: topology.sentinelAddresses(), masterName: topology.masterName });
      wrap(running);
      controllers.push(running);
    }
    note(`controllers running for ${o.durationS} s`);
    await new Promise((r) => setTimeout(r, Math.max(0, runEnd - Date.now())));
    const cpuShare = ((await cpuSeconds(c)) - cpu0) / ((Date.now() - t0) / 1000);
    for (const running of controllers.splice(0)) await running.stop();

    // --- figures from the master: the audit stream (ids = the master's clock at EXEC), the blocks.
    const audit = await c.xrange(AUDIT_STREAM, '-', '+');
    const blockedAt = new Map<string, number>();
    for (const [id, fields] of audit) {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
      if (f.action === 'block' && f.account && !blockedAt.has(f.account)) blockedAt.set(f.account, Number(id.split('-')[0]));
    }
    const blockedNow = new Set(await c.smembers(BLOCKED_INDEX_KEY));
    let wrong = 0;
    const delays: number[] = [];
    for (const [account, at] of blockedAt) {
      const due = dryAt.get(account);
      // Blocked with credit left: not an account that runs dry, or blocked before it did (1 ms: the 6-decimal rounding).
      if (due === undefined || at < due - 1) wrong++;
      else delays.push(at - due);
    }
    for (const account of blockedNow) if (!dryAt.has(account) && !blockedAt.has(account)) wrong++;
    const expected = [...dryAt.values()].filter((at) => at <= runEnd - 2 * o.roundMs).length;
    const done = [...dryAt].filter(([id, at]) => at <= runEnd - 2 * o.roundMs && blockedAt.has(id)).length;
    delays.sort((a, b) => a - b);
    roundMs.sort((a, b) => a - b);
    sweepMs.sort((a, b) => a - b);
    const memory = Number(parseInfo(await c.info('memory')).used_memory ?? 0) / 1e6;

    const p99 = r1(quantile(roundMs, 0.99));
    const delayP99 = r1(quantile(delays, 0.99));
    const summary: ScaleSummary = {
      profile: 'controller-scale',
      started_at: startedAt.toISOString(),
      accounts: o.accounts,
      calls: o.calls,
      duration_s: o.durationS,
      round_ms: o.roundMs,
      rounds: roundMs.length,
      round_p50_ms: r1(quantile(roundMs, 0.5)),
      round_p99_ms: p99,
      round_max_ms: r1(roundMs.at(-1) ?? null),
      sweep_step_p50_ms: r1(quantile(sweepMs, 0.5)),
      sweep_step_p99_ms: r1(quantile(sweepMs, 0.99)),
      master_cpu_share: Math.round(cpuShare * 1000) / 1000,
      master_cpu_share_idle: Math.round((idleShare / idleWall) * 1000) / 1000,
      blocks_expected: expected,
      blocks_done: done,
      wrong_blocks: wrong,
      block_delay_p50_ms: r1(quantile(delays, 0.5)),
      block_delay_p99_ms: delayP99,
      block_delay_max_ms: r1(delays.at(-1) ?? null),
      seed_seconds: Math.round(seedSeconds * 10) / 10,
      edge_event: { commands_per_event: 1, start_us: Math.round(startUs * 10) / 10, end_us: Math.round(endUs * 10) / 10 },
      master_used_memory_mb: Math.round(memory),
      standby_rounds: standbyRounds,
      host: { cpus: os.cpus().length, loadavg_start: loadStart, loadavg_end: os.loadavg(), node: process.version },
      targets: {
        round_p99_ms: { target: '<= 100', value: p99, met: p99 === null ? null : p99 <= 100 },
        master_cpu_share: { target: '<= 0.05', value: Math.round(cpuShare * 1000) / 1000, met: cpuShare <= 0.05 },
        blocks_within_2_rounds: { target: `every dry account blocked within ${2 * o.roundMs} ms`, value: delayP99, met: done === expected && (delays.at(-1) ?? 0) <= 2 * o.roundMs },
        wrong_blocks: { target: '0', value: wrong, met: wrong === 0 },
      },
      results_dir: runDir,
    };
    writeFileSync(path.join(runDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    return summary;
  } finally {
    clearInterval(liveness);
    for (const running of controllers) await running.stop().catch(() => undefined);
    client?.disconnect();
    await topology?.stop();
    logDest.flushSync();
    logDest.end();
  }
}
