import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { packageRoot } from '../src/dev/sipp.js';
import { PROFILE_NAMES, PROFILES, type BenchOptions, type ProfileName } from './profiles.js';

/**
 * The benchmark's command line, shared by `node dist/bench/run.js` (npm run bench) and
 * `credit-edge bench`: a profile name and options that override the profile's defaults.
 */

const num = (v: string) => {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number');
  return n;
};

/** Runs of their own, beside the PDD profiles. */
const RUNS = ['controller-scale', 'cut-overdraft', 'limits', 'soak'] as const;
export type BenchRun = ProfileName | (typeof RUNS)[number];

export function configureBenchCommand(cmd: Command): Command {
  return cmd
    .description('PDD benchmark: SIPp load through the edge, per-call PDD from SIPp message timestamps, JSON + HTML report in bench/results/')
    .addArgument(new Command().createArgument('<profile>', [...PROFILE_NAMES, ...RUNS].join(' | ')).choices([...PROFILE_NAMES, ...RUNS]))
    .option('--cps <n>', 'calls per second (capacity: the first step)', num)
    .option('--duration <s>', 'seconds per measured arm (capacity: per step)', num)
    .option('--pairs <n>', 'baseline: gated/ungated pairs', num)
    .option('--accounts <n>', 'accounts in the population', num)
    .option('--calls <n>', 'controller-scale: calls in progress seeded', num)
    .option('--dry-share <x>', 'controller-scale: share of accounts whose credit runs out during the run (default 0.005)', num)
    .option('--minutes <m>', 'soak: minutes of calls and faults (default 30)', num)
    .option('--seed <n>', 'soak: the seed of the accounts, the calls, the faults and the operator actions (default 1)', num)
    .option('--round-ms <ms>', 'controller-scale, cut-overdraft: the controller round (default 1000, the product default)', num)
    .option('--grace-ms <ms>', 'cut-overdraft: controller.cut_calls.grace_ms (default 250, the product default)', num)
    .option('--rounds <n>', 'limits: rounds of bursts (default 10)', num)
    .addOption(new Option('--warmup <s>', `seconds of unmeasured calls before each arm (0: none; defaults: ${PROFILE_NAMES.map((p) => `${p} ${PROFILES[p].defaults.warmupS}`).join(', ')})`).argParser(Number))
    .option('--step <n>', 'capacity: rate step', num)
    .option('--max-cps <n>', 'capacity: last rate tried', num)
    .option('--p99-limit <ms>', 'capacity: p99 PDD limit', num)
    .option('--fail-limit <pct>', 'capacity: failed calls limit, percent', num)
    .option('--out <dir>', 'results directory (default bench/results)')
    .option('--keep-traces', "keep SIPp's raw message traces in the run directory")
    .option('--profile', "run the edge with node --cpu-prof (.cpuprofile files in the run directory); the report lists its top functions")
    .option('--no-local-copy', 'run the edge without its local copy (local_copy.enabled: false): every lookup a round trip, as before the local copy');
}

export function benchOptionsOf(opts: Record<string, unknown>): BenchOptions {
  const o: BenchOptions = {};
  const n = (k: string) => (typeof opts[k] === 'number' ? (opts[k] as number) : undefined);
  const set = <K extends keyof BenchOptions>(key: K, v: BenchOptions[K] | undefined) => {
    if (v !== undefined) o[key] = v;
  };
  set('cps', n('cps'));
  set('durationS', n('duration'));
  set('pairs', n('pairs'));
  set('accounts', n('accounts'));
  set('warmupS', n('warmup'));
  set('stepCps', n('step'));
  set('maxCps', n('maxCps'));
  set('p99LimitMs', n('p99Limit'));
  set('failLimitPct', n('failLimit'));
  if (typeof opts.out === 'string') o.outDir = opts.out;
  if (opts.keepTraces === true) o.keepTraces = true;
  if (opts.profile === true) o.cpuProfile = true;
  if (opts.localCopy === false) o.localCopy = false;
  return o;
}

/** Runs a profile and prints the summary as the last line of stdout (one JSON object). */
export async function runFromCli(profile: BenchRun, opts: Record<string, unknown>): Promise<void> {
  const outDir = typeof opts.out === 'string' ? opts.out : path.join(packageRoot(), 'bench', 'results');
  const note = (line: string) => process.stderr.write(`bench: ${line}\n`);
  stopOnSignals();
  if (profile === 'soak') {
    const { runSoak } = await import('./soak/soak.js');
    const n = (k: string) => (typeof opts[k] === 'number' ? (opts[k] as number) : undefined);
    const summary = await runSoak({ minutes: n('minutes') ?? 30, seed: n('seed') ?? 1, ...(n('cps') !== undefined && { cps: n('cps') }), ...(n('accounts') !== undefined && { accounts: n('accounts') }), outDir }, note);
    process.stdout.write(JSON.stringify(summary) + '\n');
    return;
  }
  if (profile === 'cut-overdraft') {
    const { runCutOverdraft } = await import('./cut-overdraft.js');
    const n = (k: string) => (typeof opts[k] === 'number' ? (opts[k] as number) : undefined);
    const summary = await runCutOverdraft({ accounts: n('accounts') ?? 200, ...(n('graceMs') !== undefined && { graceMs: n('graceMs') }), ...(n('roundMs') !== undefined && { roundMs: n('roundMs') }), outDir }, note);
    process.stdout.write(JSON.stringify(summary) + '\n');
    return;
  }
  if (profile === 'limits') {
    const { runLimits } = await import('./limits.js');
    const rounds = typeof opts.rounds === 'number' ? opts.rounds : undefined;
    const summary = await runLimits({ ...(rounds !== undefined && { rounds }), outDir }, note);
    process.stdout.write(JSON.stringify(summary) + '\n');
    return;
  }
  if (profile === 'controller-scale') {
    const { runControllerScale } = await import('./controller-scale.js');
    const n = (k: string) => (typeof opts[k] === 'number' ? (opts[k] as number) : undefined);
    const summary = await runControllerScale(
      {
        accounts: n('accounts') ?? 10_000,
        calls: n('calls') ?? 100_000,
        durationS: n('duration') ?? 30,
        dryShare: n('dryShare') ?? 0.005,
        roundMs: n('roundMs') ?? 1000,
        outDir,
      },
      note,
    );
    process.stdout.write(JSON.stringify(summary) + '\n');
    return;
  }
  // Imported here: the reporting libraries are devDependencies, only needed when benchmarking.
  const { runBench } = await import('./bench.js');
  const summary = await runBench(profile, benchOptionsOf(opts));
  process.stdout.write(JSON.stringify(summary) + '\n');
}

/**
 * Ctrl-C or a kill: leave through process.exit, whose hooks kill every process this run started
 * (redis-server, SIPp, the engine, the edges, the controllers); the default signal death would skip them.
 */
function stopOnSignals(): void {
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      process.stderr.write(`bench: ${signal}: stopping everything this run started\n`);
      process.exit(code);
    });
  }
}
