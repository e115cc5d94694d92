import { setTimeout as sleep } from 'node:timers/promises';
import { connectMaster } from '../src/admin/account-command.js';
import { initDataset } from '../src/admin/dataset-command.js';
import { parseConfig } from '../src/config/load.js';
import { runSipp } from '../src/dev/sipp.js';
import type { Topology } from '../src/dev/topology.js';
import { metricSum, readDataset } from './edge-admin.js';
import { accountKey, DATASET_KEY } from '../src/redis/keys.js';

/**
 * The benchmark profiles: what load, for how long, with which faults, and in which arms (gating
 * on / off). Data only; bench/bench.ts runs them.
 */

export type ProfileName = 'smoke' | 'baseline' | 'resync' | 'master-slow' | 'failover' | 'data-loss' | 'capacity';
export const PROFILE_NAMES: ProfileName[] = ['smoke', 'baseline', 'resync', 'master-slow', 'failover', 'data-loss', 'capacity'];

export interface FaultContext {
  topology: Topology;
  /** Base URL of the admin API of the edge under measurement (its own process): read it with bench/edge-admin.ts. */
  edgeAdmin: string;
  /** host:port where callers send INVITEs. */
  sipTarget: string;
  /** Records an instant inside the fault's window (e.g. "failover done"), shown on the charts. */
  mark(label: string): void;
  /** A figure the fault measured itself; it goes into the summary's `figures`. */
  figure(name: string, value: number): void;
}

/** A fault injected `atS` seconds into an arm; its window lasts until `run` resolves. */
export interface Fault {
  atS: number;
  label: string;
  run(ctx: FaultContext): Promise<void>;
}

export interface Arm {
  label: string;
  gated: boolean;
  cps: number;
  durationS: number;
  faults: Fault[];
}

export interface BenchOptions {
  cps?: number;
  durationS?: number;
  /** baseline: gated/ungated pairs (ABBA order, to cancel drift). */
  pairs?: number;
  accounts?: number;
  warmupS?: number;
  /** capacity: first rate, step, last rate, and the limits a step must stay under. */
  fromCps?: number;
  stepCps?: number;
  maxCps?: number;
  p99LimitMs?: number;
  failLimitPct?: number;
  /** Where run directories go (default bench/results). */
  outDir?: string;
  /** Keep SIPp's raw message traces in the run directory (tens of MB). */
  keepTraces?: boolean;
  /** Run the edge with node --cpu-prof; the report lists its top functions by self time. */
  cpuProfile?: boolean;
  /** false: the edge runs without its local copy (the comparison before/after it). */
  localCopy?: boolean;
}

export interface Profile {
  name: ProfileName;
  description: string;
  sentinels: number;
  /** How the figures are put together. */
  kind: 'compare' | 'faults' | 'capacity';
  defaults: Required<Pick<BenchOptions, 'cps' | 'durationS' | 'accounts' | 'warmupS'>>;
  /** The arms, in order (capacity builds its steps itself). */
  arms(o: ResolvedOptions): Arm[];
  /** Starts the credit controller beside the edge (cuts on, its defaults). */
  controller?: boolean;
}

export type ResolvedOptions = Required<Omit<BenchOptions, 'outDir' | 'keepTraces' | 'cpuProfile' | 'localCopy'>> & { outDir: string; keepTraces: boolean; cpuProfile: boolean; localCopy: boolean };


/** Gated and ungated arms in ABBA order: G U, U G, G U... */
function pairs(o: ResolvedOptions): Arm[] {
  const arms: Arm[] = [];
  for (let i = 0; i < o.pairs; i++) {
    const order = i % 2 === 0 ? [true, false] : [false, true];
    for (const gated of order) arms.push({ label: `${gated ? 'gated' : 'ungated'}-${i + 1}`, gated, cps: o.cps, durationS: o.durationS, faults: [] });
  }
  return arms;
}

const single = (faults: (o: ResolvedOptions) => Fault[]) => (o: ResolvedOptions): Arm[] => [{ label: 'gated', gated: true, cps: o.cps, durationS: o.durationS, faults: faults(o) }];

/** Fault times scale with the duration, so a shortened run still has a healthy phase first. */
const at = (o: ResolvedOptions, share: number) => Math.round(o.durationS * share * 10) / 10;

export const PROFILES: Record<ProfileName, Profile> = {
  smoke: {
    name: 'smoke',
    description: 'A few seconds each of gating on and off at a low rate: proves the runner works (CI).',
    sentinels: 0,
    kind: 'compare',
    defaults: { cps: 20, durationS: 4, accounts: 1000, warmupS: 1 },
    arms: (o) => pairs({ ...o, pairs: 1 }),
  },
  baseline: {
    name: 'baseline',
    description: 'Gating on vs gating off (every identified call routed, no lookup), alternating arms at the same rate.',
    sentinels: 0,
    kind: 'compare',
    // 30 s of warm-up: the edge's CPU per call is measured in its steady state, once V8 has
    // compiled the hot paths; the warm-up's own figure is reported beside it (bench/README.md).
    defaults: { cps: 100, durationS: 20, accounts: 5000, warmupS: 30 },
    arms: pairs,
  },
  resync: {
    name: 'resync',
    description: 'One replica restarted empty and resyncing (held open ~3 s) mid-run, then the other replica frozen for 5 s.',
    sentinels: 0,
    kind: 'faults',
    defaults: { cps: 100, durationS: 40, accounts: 5000, warmupS: 2 },
    arms: single((o) => [
      {
        atS: at(o, 0.25),
        label: 'replica B restarted empty (resync)',
        async run({ topology, mark }) {
          const replica = topology.replicas[1]!;
          await replica.restartFromEmpty({ holdSyncMs: 3000 });
          mark(`${replica.name} syncing`);
          await replica.waitForSync(30_000);
        },
      },
      {
        atS: at(o, 0.6),
        label: 'replica A frozen (SIGSTOP) 5 s',
        async run({ topology }) {
          const replica = topology.replicas[0]!;
          replica.freeze();
          try {
            await sleep(5000);
          } finally {
            replica.thaw();
          }
        },
      },
    ]),
  },
  'master-slow': {
    name: 'master-slow',
    description: 'DEBUG SLEEP bursts of 1.5 s on the master, three times.',
    sentinels: 0,
    kind: 'faults',
    defaults: { cps: 100, durationS: 30, accounts: 5000, warmupS: 2 },
    arms: single((o) =>
      [0.3, 0.55, 0.8].map((share, i) => ({
        atS: at(o, share),
        label: `master DEBUG SLEEP 1.5 s (#${i + 1})`,
        async run({ topology }) {
          await topology.master.slow(1500);
          await sleep(1500);
        },
      })),
    ),
  },
  failover: {
    name: 'failover',
    description: 'The master frozen (SIGSTOP, the incident\'s hung master) until Sentinel fails over; thawed 3 s later.',
    sentinels: 3,
    kind: 'faults',
    controller: true,
    defaults: { cps: 100, durationS: 30, accounts: 5000, warmupS: 2 },
    arms: single((o) => [
      {
        atS: at(o, 0.3),
        label: 'master frozen until failover',
        async run({ topology, mark }) {
          const old = topology.freezeMaster();
          try {
            const to = await topology.waitForFailover(20_000);
            mark(`failover to :${to.port}`);
            await sleep(3000);
          } finally {
            old.thaw();
          }
          mark(`old master ${old.name} thawed`);
        },
      },
    ]),
  },
  'data-loss': {
    name: 'data-loss',
    description:
      'The master restarted without its data (replicas resync to an empty dataset, in sync, nil for every key); the accounts re-provisioned and the dataset re-declared by the operator step (`credit-edge dataset init`); then one real deletion.',
    sentinels: 1,
    controller: true,
    kind: 'faults',
    defaults: { cps: 100, durationS: 40, accounts: 5000, warmupS: 2 },
    arms: single((o) => {
      let reprovision: [string, Record<string, string>][] = [];
      return [
        {
          atS: at(o, 0.25),
          label: 'master restarted without its data',
          async run({ topology, edgeAdmin, mark, figure }) {
            reprovision = await snapshotAccounts(topology);
            const served = () => metricSum(edgeAdmin, 'credit_edge_stale_serves_total');
            const before = await served();
            const t0 = Date.now();
            const restarted = topology.restartMasterEmpty();
            while ((await served()) === before && Date.now() - t0 < 20_000) await sleep(10);
            figure('first_cache_answer_after_fault_s', (Date.now() - t0) / 1000);
            await restarted;
            mark('replicas in sync with the empty dataset');
          },
        },
        {
          atS: at(o, 0.55),
          label: 'accounts re-provisioned, then `credit-edge dataset init`',
          async run({ topology, edgeAdmin, mark, figure }) {
            const pipeline = topology.master.client.pipeline();
            for (const [key, hash] of reprovision) pipeline.hset(key, hash);
            for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
            mark('accounts re-provisioned (no marker yet)');
            const t0 = Date.now();
            const master = await connectMaster(parseConfig(JSON.stringify({ redis: { sentinel: { master_name: topology.masterName, addresses: topology.sentinelAddresses().map((s) => `${s.host}:${s.port}`) } } }), '(bench)'));
            try {
              await initDataset(master);
            } finally {
              await master.close();
            }
            mark('dataset declared');
            const id = await topology.master.client.hget(DATASET_KEY, 'id');
            while ((await readDataset(edgeAdmin)).id !== id && Date.now() - t0 < 20_000) await sleep(10);
            figure('dataset_readable_after_init_s', (Date.now() - t0) / 1000);
          },
        },
        {
          atS: at(o, 0.8),
          label: 'one real deletion (an account outside the call mix)',
          async run({ topology, sipTarget, mark, figure }) {
            const probe = DELETION_PROBE;
            await topology.master.client.hset(accountKey(probe), { enabled: '1', balance: '10' });
            await topology.master.waitForReplicas(2000);
            const answer = async () => (await runSipp({ scenario: 'edge-uac', vars: { HOLD: '0' }, remote: sipTarget, injection: [[probe]], service: 'callee', timeoutMs: 10_000 })).messages.find((m) => m.direction === 'received' && (m.status ?? 0) >= 200)?.status;
            await answer();
            const t0 = Date.now();
            await topology.master.client.del(accountKey(probe));
            mark('deleted');
            // Calls placed one after another; the figure is when the first call answered 403 was
            // placed (SIPp started), not when its answer came back through a process start.
            for (let placed = Date.now(); placed - t0 < 10_000; placed = Date.now()) {
              if ((await answer()) === 403) {
                figure('single_deletion_403_after_s', (placed - t0) / 1000);
                break;
              }
              await sleep(50);
            }
          },
        },
      ];
    }),
  },
  capacity: {
    name: 'capacity',
    description: 'Gated calls, rate stepped up until p99 PDD or failed calls cross the limit.',
    sentinels: 0,
    kind: 'capacity',
    defaults: { cps: 50, durationS: 10, accounts: 5000, warmupS: 2 },
    arms: () => [],
  },
};

export function resolveOptions(profile: Profile, o: BenchOptions, defaultOutDir: string): ResolvedOptions {
  const cps = o.cps ?? profile.defaults.cps;
  return {
    cps,
    durationS: o.durationS ?? profile.defaults.durationS,
    pairs: o.pairs ?? 2,
    accounts: o.accounts ?? profile.defaults.accounts,
    warmupS: o.warmupS ?? profile.defaults.warmupS,
    fromCps: o.fromCps ?? cps,
    stepCps: o.stepCps ?? 50,
    maxCps: o.maxCps ?? 1000,
    p99LimitMs: o.p99LimitMs ?? 50,
    failLimitPct: o.failLimitPct ?? 0.1,
    outDir: o.outDir ?? defaultOutDir,
    keepTraces: o.keepTraces ?? false,
    cpuProfile: o.cpuProfile ?? false,
    localCopy: o.localCopy ?? true,
  };
}

/** An account outside the benchmark's mix, for the single deletion. */
const DELETION_PROBE = 'bench-deletion-probe';

/** The account hashes on the master (what a billing system would re-provision from its own records). */
async function snapshotAccounts(topology: Topology): Promise<[string, Record<string, string>][]> {
  const out: [string, Record<string, string>][] = [];
  let cursor = '0';
  do {
    const [next, keys] = await topology.master.client.scan(cursor, 'MATCH', `${accountKey('')}*`, 'COUNT', 1000);
    cursor = next;
    const pipeline = topology.master.client.pipeline();
    for (const key of keys) pipeline.hgetall(key);
    const replies = (await pipeline.exec()) ?? [];
    keys.forEach((key, i) => out.push([key, replies[i]![1] as Record<string, string>]));
  } while (cursor !== '0');
  return out;
}
