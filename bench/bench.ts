import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot, stopAllSipp } from '../src/dev/sipp.js';
import type { Logger } from '../src/log.js';
import { callSequence, makeAccounts, type AccountSet } from './accounts.js';
import { startControllerIfAvailable, type ControllerHandle } from './controller-hook.js';
import { topFunctions } from './cpu-profile.js';
import { decisionTimesOf, type DecisionTimes } from './decision-time.js';
import { driveArm, type ArmResult, type LocalCopySample } from './load.js';
import { runnerLog, within } from './runner-log.js';
import { PROFILES, resolveOptions, type Arm, type BenchOptions, type Profile, type ProfileName, type ResolvedOptions } from './profiles.js';
import { writeReport, type ReportArm, type ReportInput } from './report.js';
import { startRig, type Rig } from './rig.js';
import { countsOf, figuresOf, judge, pddsOf, ratio, type CallCounts, type JudgedCall, type PddFigures } from './stats.js';

/**
 * Runs one profile end to end: rig up, accounts seeded, arms driven (each on a fresh edge, after a
 * warm-up), figures and report written, everything stopped. Returns the summary that run.ts prints
 * as its last line.
 */

export interface Summary {
  profile: ProfileName;
  started_at: string;
  duration_s: number;
  /** The rate of the measured arms (capacity: the highest rate that stayed under the limits). */
  cps: number | null;
  /** Gated calls measured (the product's behaviour); ungated figures are under `ungated`. */
  calls: number;
  failed_calls: number;
  pdd_p50_ms: number | null;
  pdd_p90_ms: number | null;
  pdd_p99_ms: number | null;
  pdd_max_ms: number | null;
  /** Gated / ungated PDD of calls for good accounts (routed in both arms): the gate's cost. */
  ratio_p50: number | null;
  ratio_p99: number | null;
  false_403: number;
  unexpected_503: number;
  /** Calls the network ended: every account of a profile is funded, so any is a funded call cut. */
  ended_by_network: number;
  /** Peak RSS (VmHWM) of the edge processes (one per arm), MB. */
  edge_rss_mb: number | null;
  /** CPU time (user + system, from /proc) of the edge process over the measured phase / calls, per mode. */
  edge_cpu_us_per_call: CpuPerCall;
  /**
   * The same over the warm-ups before the arms: a freshly started edge's first calls, which also
   * pay for V8 compiling the hot paths and the heap growing. Null without a warm-up.
   */
  edge_cpu_us_per_call_warmup: CpuPerCall | null;
  /** The same for the SIP server process when it is ours (the embedded engine); null for an external one. */
  sip_server_cpu_us_per_call: CpuPerCall | null;
  sip_server: string;
  edge_process: string;
  /** Per measured arm (capacity: per step): calls, CPU per call, edge peak RSS. */
  per_arm: { arm: string; gated: boolean; cps: number; calls: number; edge_cpu_us_per_call: number | null; sip_server_cpu_us_per_call: number | null; edge_rss_mb: number | null }[];
  /** Gating on and off: the edge's own time to decide, from its log (bench/decision-time.ts). */
  decision_times?: DecisionTimes;
  /** With --profile: the edges' .cpuprofile files (the CPU figures then include the profiler's cost). */
  cpu_profiles?: string[];
  answered_503: number;
  no_answer: number;
  from_cache: number;
  outcomes: CallCounts['outcomes'];
  ungated?: { calls: number; failed_calls: number; pdd_p50_ms: number | null; pdd_p99_ms: number | null; pdd_max_ms: number | null };
  ratio_basis?: string;
  phases?: { healthy: PddFigures | null; faulted: PddFigures | null; fault_ratio_p99: number | null; windows: { label: string; start_s: number; end_s: number | null; error?: string }[] };
  /**
   * Share of the gated arms' lookups the edge's local copy answered (no round trip): over the
   * whole arms, and for fault profiles per phase (before the first fault, from it to the end of the
   * last one, after). Null where the edge had no local copy.
   */
  local_copy_hit_rate?: { whole: number | null; healthy?: number | null; faulted?: number | null; after?: number | null };
  /** Figures the faults measured themselves (data-loss: seconds to the first cache-served answer, ...). */
  figures?: Record<string, number>;
  capacity?: { p99_limit_ms: number; fail_limit_pct: number; max_cps_passing: number | null; steps: CapacityStep[] };
  controller?: string;
  rtd_cross_check: { rtd_p50_ms: number | null; rtd_p99_ms: number | null; rtd_mean_ms: number | null; trace_mean_ms: number | null; note: string };
  sipp: { failed_calls: number; killed_runs: number };
  host: { cpus: number; loadavg_start: number[]; loadavg_end: number[]; node: string };
  targets: Record<string, { target: string; value: number | string | null; met: boolean | null }>;
  results_dir: string;
  report: string;
  chart_svg: string;
}

export interface CpuPerCall {
  gated: number | null;
  ungated: number | null;
}

export interface CapacityStep {
  cps: number;
  calls: number;
  failed_pct: number;
  pdd_p50_ms: number | null;
  pdd_p99_ms: number | null;
  edge_cpu_us_per_call: number | null;
  passed: boolean;
}

interface Measured {
  result: ArmResult;
  judged: JudgedCall[];
  /** The arm's warm-up: calls placed and the edge's CPU ms over them (undefined without one). */
  warmup?: { calls: number; edgeMs: number | null };
}

export interface RunHooks {
  /** Progress lines (stderr by default: stdout's last line is the summary). */
  note?: (line: string) => void;
}

const EDGE_PROCESS =
  'own process: the edge runs as `credit-edge edge --config FILE` (a fresh process per arm, logging at info to edge.log), the SIP server in another process, redis-server, SIPp and this runner in theirs; CPU from /proc/<pid>/stat over the measured phase, RSS = the edge process\'s VmHWM';

export async function runBench(name: ProfileName, options: BenchOptions = {}, hooks: RunHooks = {}): Promise<Summary> {
  const profile = PROFILES[name];
  if (!profile) throw new Error(`unknown profile ${name}`);
  const o = resolveOptions(profile, options, path.join(packageRoot(), 'bench', 'results'));
  const note = hooks.note ?? ((line: string) => process.stderr.write(`bench: ${line}\n`));
  const startedAt = new Date();
  const runDir = path.join(o.outDir, `${name}-${startedAt.toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(runDir, { recursive: true });
  const loadStart = os.loadavg();

  // The runner's own log (topology, faults). The edge process logs as in production (info, one
  // line per decision) to edge.log: its cost is in the edge's CPU figures.
  const log = runnerLog(runDir, { service: 'credit-edge' });
  const { logger } = log;

  // Bounded in time: twice the plan plus two minutes; on expiry everything started is stopped.
  const planS = plannedSeconds(profile, o);
  // Filled in as things start, so the finally below stops exactly what was started.
  const started: { rig?: Rig; controller?: ControllerHandle; controllerStatus?: string } = {};
  let finished = false;
  try {
    note(`${name}: ${profile.description} (about ${planS} s)`);
    const measured = await within(
      planS * 2 + 120,
      `bench ${name}`,
      (async () => {
        const rig = (started.rig = await startRig({ sentinels: profile.sentinels, logger, runDir, cpuProfile: o.cpuProfile, localCopy: o.localCopy }));
        const accounts = makeAccounts(o.accounts);
        await rig.topology.seed(accounts.seed);
        note(`rig up: ${rig.sipServer.kind} ${rig.sipTarget}, ${rig.topology.replicas.length} replicas, ${profile.sentinels} sentinels; ${Object.keys(accounts.seed).length} of ${o.accounts} accounts seeded`);
        if (profile.controller) {
          const c = await startControllerIfAvailable({ topology: rig.topology, logger });
          if (c.handle) started.controller = c.handle;
          started.controllerStatus = c.status;
          note(`controller: ${c.status}`);
        }
        const run = await (profile.kind === 'capacity' ? runCapacity(rig, accounts, o, logger, note) : runArms(rig, profile.arms(o), accounts, o, logger, note, runDir));
        // The last edge stops here, so that its .cpuprofile is written before the report reads it.
        await rig.stopEdge();
        return run;
      })(),
    );
    const rig = started.rig!;
    const summary = summarize(profile, o, measured, { startedAt, loadStart, runDir, sipServer: rig.sipServer.kind, controller: started.controller ? `running; at the end: ${started.controller.status()}` : started.controllerStatus });
    const cpuProfiles = rig.edges.flatMap((e) => (e.cpuProfileFile ? [{ file: e.cpuProfileFile, gated: e.gated }] : []));
    if (cpuProfiles.length > 0) summary.cpu_profiles = cpuProfiles.map((p) => p.file);
    if (summary.ratio_p50 !== null) {
      const times = decisionTimesOf(path.join(runDir, 'edge.log'), rig.edges.map((e) => e.gated), makeAccounts(o.accounts).classOf);
      if (times) summary.decision_times = times;
    }
    writeFileSync(path.join(runDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    writeCallsCsv(path.join(runDir, 'calls.csv'), measured.arms);
    await writeReport({ ...reportInput(profile, o, summary, measured), cpuTop: cpuTopOf(cpuProfiles) }, runDir);
    note(`results in ${path.relative(process.cwd(), runDir) || runDir}`);
    finished = true;
    return summary;
  } finally {
    // On a failure or the watchdog, a UAC may still be running: kill the SIPps this process started.
    if (!finished) await stopAllSipp();
    await started.controller?.stop().catch(() => undefined);
    await started.rig?.stop();
    log.close();
  }
}

function plannedSeconds(profile: Profile, o: ResolvedOptions): number {
  const setup = 15;
  if (profile.kind === 'capacity') {
    const steps = Math.max(1, Math.floor((o.maxCps - o.fromCps) / o.stepCps) + 1);
    return setup + o.warmupS + steps * (o.durationS + 3);
  }
  return setup + profile.arms(o).reduce((s, a) => s + a.durationS + o.warmupS + 3, 0);
}

interface MeasuredRun {
  arms: Measured[];
  steps?: CapacityStep[];
}

async function runArms(rig: Rig, arms: Arm[], accounts: AccountSet, o: ResolvedOptions, logger: Logger, note: (l: string) => void, runDir: string): Promise<MeasuredRun> {
  const out: Measured[] = [];
  for (const arm of arms) {
    // A fresh edge per arm, so every arm starts from the same state (connections, empty cache).
    await rig.useEdge(arm.gated);
    const warmed = await warmup(rig, arm.gated, arm.cps, accounts, o, logger);
    const result = await driveArm({
      rig,
      arm,
      accounts: callSequence(accounts, arm.cps * arm.durationS, 1),
      logger,
      ...(o.keepTraces && { keepTraceAs: path.join(runDir, `sipp-${arm.label}.log`) }),
    });
    const judged = judge(result.calls, accounts.classOf, arm.gated);
    out.push({ result, judged, ...(warmed && { warmup: { calls: warmed.sipp.successful + warmed.sipp.failed, edgeMs: warmed.cpu.edgeMs } }) });
    const f = figuresOf(pddsOf(judged));
    const c = countsOf(judged);
    note(`${arm.label} @${arm.cps} cps: ${c.calls} calls, p50 ${f?.p50 ?? '-'} ms, p99 ${f?.p99 ?? '-'} ms, failed ${c.failed_calls}, false 403 ${c.false_403}, unexpected 503 ${c.unexpected_503}, edge CPU ${perCall(result.cpu.edgeMs, c.calls) ?? '-'} µs/call`);
  }
  return { arms: out };
}

async function warmup(rig: Rig, gated: boolean, cps: number, accounts: AccountSet, o: ResolvedOptions, logger: Logger): Promise<ArmResult | undefined> {
  if (o.warmupS <= 0) return undefined;
  const arm: Arm = { label: 'warmup', gated, cps, durationS: o.warmupS, faults: [] };
  return driveArm({ rig, arm, accounts: callSequence(accounts, cps * o.warmupS, 99), logger, warmup: true });
}

async function runCapacity(rig: Rig, accounts: AccountSet, o: ResolvedOptions, logger: Logger, note: (l: string) => void): Promise<MeasuredRun> {
  const arms: Measured[] = [];
  const steps: CapacityStep[] = [];
  await rig.useEdge(true);
  await warmup(rig, true, o.fromCps, accounts, o, logger);
  for (let cps = o.fromCps; cps <= o.maxCps; cps += o.stepCps) {
    const arm: Arm = { label: `${cps}cps`, gated: true, cps, durationS: o.durationS, faults: [] };
    const result = await driveArm({ rig, arm, accounts: callSequence(accounts, cps * o.durationS, cps), logger });
    const judged = judge(result.calls, accounts.classOf, true);
    arms.push({ result, judged });
    const f = figuresOf(pddsOf(judged));
    const c = countsOf(judged);
    const failedPct = c.calls > 0 ? (c.failed_calls / c.calls) * 100 : 100;
    const passed = f !== undefined && f.p99 < o.p99LimitMs && failedPct < o.failLimitPct;
    steps.push({ cps, calls: c.calls, failed_pct: Math.round(failedPct * 1000) / 1000, pdd_p50_ms: f?.p50 ?? null, pdd_p99_ms: f?.p99 ?? null, edge_cpu_us_per_call: perCall(result.cpu.edgeMs, c.calls), passed });
    note(`capacity ${cps} cps: ${c.calls} calls, p99 ${f?.p99 ?? '-'} ms, failed ${failedPct.toFixed(3)}% -> ${passed ? 'under' : 'OVER'} the limits`);
    if (!passed) break;
  }
  return { arms, steps };
}

const nul = (x: number | undefined) => (x === undefined ? null : x);

/** CPU ms over a number of calls, in µs per call (whole µs). */
function perCall(cpuMs: number | null, calls: number): number | null {
  return cpuMs === null || calls === 0 ? null : Math.round((cpuMs * 1000) / calls);
}

/** CPU per call over parts (arms, warm-ups): their CPU added up over their calls added up (null if any CPU is unknown). */
function cpuPerCallOver(parts: { cpuMs: number | null | undefined; calls: number }[]): number | null {
  if (parts.length === 0 || parts.some((p) => typeof p.cpuMs !== 'number')) return null;
  return perCall(parts.reduce((s, p) => s + p.cpuMs!, 0), parts.reduce((s, p) => s + p.calls, 0));
}

/** CPU per call of a set of arms. */
function cpuPerCallOf(arms: Measured[], which: 'edgeMs' | 'sipServerMs'): number | null {
  return cpuPerCallOver(arms.map((m) => ({ cpuMs: m.result.cpu[which], calls: m.judged.length })));
}

/** Edge CPU per call over the arms' warm-ups, per mode; null when the arms had none. */
function warmupCpuPerCall(arms: Measured[]): CpuPerCall | null {
  if (!arms.some((m) => m.warmup)) return null;
  const of = (gated: boolean) => cpuPerCallOver(arms.filter((m) => m.result.arm.gated === gated).map((m) => ({ cpuMs: m.warmup?.edgeMs, calls: m.warmup?.calls ?? 0 })));
  return { gated: of(true), ungated: of(false) };
}

function cpuTopOf(profiles: { file: string; gated: boolean }[]): ReportInput['cpuTop'] {
  const modes = [true, false].map((gated) => ({ gated, top: topFunctions(profiles.filter((p) => p.gated === gated).map((p) => p.file), 25, packageRoot()) }));
  return modes.flatMap(({ gated, top }) => (top ? [{ name: gated ? 'gated' : 'ungated', ...top }] : []));
}

function summarize(profile: Profile, o: ResolvedOptions, run: MeasuredRun, ctx: { startedAt: Date; loadStart: number[]; runDir: string; sipServer: string; controller: string | undefined }): Summary {
  const gatedArms = run.arms.filter((m) => m.result.arm.gated);
  const ungatedArms = run.arms.filter((m) => !m.result.arm.gated);
  // Capacity: the figures of the highest step under the limits (else of the first step).
  let headline = gatedArms;
  let cps: number | null = o.cps;
  if (run.steps) {
    const best = [...run.steps].reverse().find((s) => s.passed);
    cps = best?.cps ?? null;
    const pick = gatedArms.find((m) => m.result.arm.cps === (best?.cps ?? run.steps![0]?.cps));
    headline = pick ? [pick] : [];
  }
  const gated = headline.flatMap((m) => m.judged);
  const counts = countsOf(gated);
  const f = figuresOf(pddsOf(gated));

  const okPdds = (arms: Measured[]) => pddsOf(arms.flatMap((m) => m.judged).filter((c) => c.accountClass === 'ok' && c.outcome === 'routed'));
  const okGated = figuresOf(okPdds(gatedArms));
  const okUngated = figuresOf(okPdds(ungatedArms));
  const ungatedCalls = ungatedArms.flatMap((m) => m.judged);
  const uf = figuresOf(pddsOf(ungatedCalls));

  const rtt = headline.flatMap((m) => m.result.rtt.map((r) => r.ms));
  const rf = figuresOf(rtt);
  const rttMean = rtt.length ? Math.round((rtt.reduce((a, b) => a + b, 0) / rtt.length) * 1000) / 1000 : null;

  const summary: Summary = {
    profile: profile.name,
    started_at: ctx.startedAt.toISOString(),
    duration_s: Math.round((Date.now() - ctx.startedAt.getTime()) / 100) / 10,
    cps,
    calls: counts.calls,
    failed_calls: counts.failed_calls,
    pdd_p50_ms: nul(f?.p50),
    pdd_p90_ms: nul(f?.p90),
    pdd_p99_ms: nul(f?.p99),
    pdd_max_ms: nul(f?.max),
    ratio_p50: ungatedArms.length ? ratio(okGated?.p50, okUngated?.p50) : null,
    ratio_p99: ungatedArms.length ? ratio(okGated?.p99, okUngated?.p99) : null,
    false_403: counts.false_403,
    unexpected_503: counts.unexpected_503,
    ended_by_network: counts.ended_by_network,
    edge_rss_mb: run.arms.some((m) => m.result.edgeRssMb !== null) ? Math.max(...run.arms.map((m) => m.result.edgeRssMb ?? 0)) : null,
    edge_cpu_us_per_call: { gated: cpuPerCallOf(headline, 'edgeMs'), ungated: cpuPerCallOf(ungatedArms, 'edgeMs') },
    edge_cpu_us_per_call_warmup: warmupCpuPerCall(run.arms),
    sip_server_cpu_us_per_call: run.arms.every((m) => m.result.cpu.sipServerMs === null) ? null : { gated: cpuPerCallOf(headline, 'sipServerMs'), ungated: cpuPerCallOf(ungatedArms, 'sipServerMs') },
    sip_server: ctx.sipServer,
    edge_process: EDGE_PROCESS,
    per_arm: run.arms.map((m) => ({
      arm: m.result.arm.label,
      gated: m.result.arm.gated,
      cps: m.result.arm.cps,
      calls: m.judged.length,
      edge_cpu_us_per_call: perCall(m.result.cpu.edgeMs, m.judged.length),
      sip_server_cpu_us_per_call: perCall(m.result.cpu.sipServerMs, m.judged.length),
      edge_rss_mb: m.result.edgeRssMb,
    })),
    answered_503: counts.answered_503,
    no_answer: counts.no_answer,
    from_cache: counts.from_cache,
    outcomes: counts.outcomes,
    rtd_cross_check: {
      rtd_p50_ms: nul(rf?.p50),
      rtd_p99_ms: nul(rf?.p99),
      rtd_mean_ms: rttMean,
      trace_mean_ms: nul(f?.mean),
      note: "SIPp's rtd 'pdd' (start_rtd at INVITE, rtd at the first 18x/final) in whole ms, same calls as pdd_*",
    },
    sipp: { failed_calls: run.arms.reduce((s, m) => s + m.result.sipp.failed, 0), killed_runs: run.arms.filter((m) => m.result.sipp.killed).length },
    host: { cpus: os.cpus().length, loadavg_start: ctx.loadStart.map((x) => Math.round(x * 100) / 100), loadavg_end: os.loadavg().map((x) => Math.round(x * 100) / 100), node: process.version },
    targets: {},
    results_dir: ctx.runDir,
    report: path.join(ctx.runDir, 'report.html'),
    chart_svg: path.join(ctx.runDir, 'pdd-over-time.svg'),
  };
  if (ctx.controller) summary.controller = ctx.controller;
  if (ungatedArms.length) {
    const uc = countsOf(ungatedCalls);
    summary.ungated = { calls: uc.calls, failed_calls: uc.failed_calls, pdd_p50_ms: nul(uf?.p50), pdd_p99_ms: nul(uf?.p99), pdd_max_ms: nul(uf?.max) };
    summary.ratio_basis = `calls for good accounts (routed in both arms): gated p50 ${okGated?.p50} / p99 ${okGated?.p99} ms, ungated p50 ${okUngated?.p50} / p99 ${okUngated?.p99} ms`;
  }
  summary.local_copy_hit_rate = localCopyHitRates(gatedArms, profile.kind === 'faults');
  if (profile.kind === 'faults') {
    summary.phases = phasesOf(gatedArms);
    const figures = Object.assign({}, ...gatedArms.flatMap((m) => m.result.faults.map((w) => w.figures))) as Record<string, number>;
    if (Object.keys(figures).length > 0) summary.figures = figures;
  }
  if (run.steps) summary.capacity = { p99_limit_ms: o.p99LimitMs, fail_limit_pct: o.failLimitPct, max_cps_passing: cps, steps: run.steps };
  summary.targets = targetsOf(profile, summary);
  return summary;
}

/** Hit rate of the local copy between the samples nearest two instants (null: no lookup, or no local copy). */
function hitRateBetween(samples: LocalCopySample[], fromMs: number, toMs: number): number | null {
  const nearest = (ms: number) => samples.reduce((best, s) => (Math.abs(s.atMs - ms) < Math.abs(best.atMs - ms) ? s : best));
  if (samples.length < 2) return null;
  const a = nearest(fromMs);
  const b = nearest(toMs);
  const lookups = b.hits - a.hits + (b.misses - a.misses);
  return lookups > 0 ? Math.round(((b.hits - a.hits) / lookups) * 1000) / 1000 : null;
}

function localCopyHitRates(arms: Measured[], perPhase: boolean): NonNullable<Summary['local_copy_hit_rate']> {
  let hits = 0;
  let lookups = 0;
  for (const { result } of arms) {
    const first = result.localCopy[0];
    const last = result.localCopy.at(-1);
    if (!first || !last) continue;
    hits += last.hits - first.hits;
    lookups += last.hits - first.hits + (last.misses - first.misses);
  }
  const whole = lookups > 0 ? Math.round((hits / lookups) * 1000) / 1000 : null;
  const arm = arms[0]?.result;
  if (!perPhase || !arm || arm.faults.length === 0) return { whole };
  const start = Math.min(...arm.faults.map((w) => w.startMs));
  const end = Math.max(...arm.faults.map((w) => w.endMs ?? arm.endMs));
  return { whole, healthy: hitRateBetween(arm.localCopy, arm.t0Ms, start), faulted: hitRateBetween(arm.localCopy, start, end), after: hitRateBetween(arm.localCopy, end, arm.endMs) };
}

/** Healthy = INVITEs before the first fault; faulted = INVITEs inside a fault window or the 2 s after it. */
function phasesOf(arms: Measured[]): NonNullable<Summary['phases']> {
  const calls = arms.flatMap((m) => m.judged);
  const windows = arms.flatMap((m) => m.result.faults.map((w) => ({ w, t0: m.result.t0Ms })));
  const first = Math.min(...windows.map(({ w }) => w.startMs));
  const inFault = (ms: number) => windows.some(({ w }) => ms >= w.startMs && ms <= (w.endMs ?? Infinity) + 2000);
  const healthy = figuresOf(pddsOf(calls.filter((c) => c.atUs / 1000 < first)));
  const faulted = figuresOf(pddsOf(calls.filter((c) => inFault(c.atUs / 1000))));
  return {
    healthy: healthy ?? null,
    faulted: faulted ?? null,
    fault_ratio_p99: ratio(faulted?.p99, healthy?.p99),
    windows: windows.map(({ w, t0 }) => ({
      label: w.label,
      start_s: Math.round((w.startMs - t0) / 100) / 10,
      end_s: w.endMs === undefined ? null : Math.round((w.endMs - t0) / 100) / 10,
      ...(w.error && { error: w.error }),
    })),
  };
}

function targetsOf(profile: Profile, s: Summary): Summary['targets'] {
  const t: Summary['targets'] = {};
  const le = (v: number | null, max: number) => (v === null ? null : v <= max);
  t.false_403 = { target: '= 0', value: s.false_403, met: s.false_403 === 0 };
  t.funded_calls_cut = { target: '= 0 (calls the network ended)', value: s.ended_by_network, met: s.ended_by_network === 0 };
  if (profile.kind === 'compare') {
    t.gate_cost_p50 = { target: 'ratio_p50 <= 1.10', value: s.ratio_p50, met: le(s.ratio_p50, 1.1) };
    t.gate_cost_p99 = { target: 'ratio_p99 <= 1.25', value: s.ratio_p99, met: le(s.ratio_p99, 1.25) };
  }
  if (profile.kind === 'faults') {
    t.unexpected_503 = { target: '= 0 (503s for accounts the cache held)', value: s.unexpected_503, met: s.unexpected_503 === 0 };
    const r = s.phases?.fault_ratio_p99 ?? null;
    t.fault_p99 = { target: 'p99 during faults <= 1.5 x healthy p99', value: r, met: le(r, 1.5) };
  }
  if (profile.name === 'failover') {
    // Not measured yet: needs the controller's writes per master (see bench/controller-hook.ts).
    t.no_writes_to_demoted_master = { target: 'the controller writes nothing to the demoted master (not measured yet)', value: s.controller ?? null, met: null };
  }
  if (profile.name === 'data-loss') {
    const s403 = s.figures?.single_deletion_403_after_s ?? null;
    t.single_deletion_403 = { target: 'a real deletion answered 403 Forbidden within 2 s', value: s403, met: le(s403, 2) };
  }
  if (profile.kind === 'capacity') {
    t.capacity = { target: `highest rate with p99 < ${s.capacity?.p99_limit_ms} ms and < ${s.capacity?.fail_limit_pct}% failed`, value: s.capacity?.max_cps_passing ?? null, met: null };
  }
  return t;
}

function reportInput(profile: Profile, o: ResolvedOptions, summary: Summary, run: MeasuredRun): ReportInput {
  const arms: ReportArm[] = run.arms.map((m) => ({ label: m.result.arm.label, gated: m.result.arm.gated, cps: m.result.arm.cps, t0Ms: m.result.t0Ms, endMs: m.result.endMs, calls: m.judged, faults: m.result.faults }));
  const groups: ReportInput['groups'] = [];
  if (profile.kind === 'compare') {
    const ok = (gated: boolean) => pddsOf(run.arms.filter((m) => m.result.arm.gated === gated).flatMap((m) => m.judged).filter((c) => c.accountClass === 'ok' && c.outcome === 'routed'));
    groups.push({ name: 'gated (good accounts)', pdds: ok(true) }, { name: 'ungated (good accounts)', pdds: ok(false) });
    groups.push({ name: 'gated (all calls)', pdds: pddsOf(run.arms.filter((m) => m.result.arm.gated).flatMap((m) => m.judged)) });
  } else if (profile.kind === 'faults') {
    const calls = run.arms.flatMap((m) => m.judged);
    const windows = run.arms.flatMap((m) => m.result.faults);
    const first = Math.min(...windows.map((w) => w.startMs));
    const inFault = (ms: number) => windows.some((w) => ms >= w.startMs && ms <= (w.endMs ?? Infinity) + 2000);
    groups.push({ name: 'healthy phase', pdds: pddsOf(calls.filter((c) => c.atUs / 1000 < first)) });
    groups.push({ name: 'during faults (+2 s)', pdds: pddsOf(calls.filter((c) => inFault(c.atUs / 1000))) });
    groups.push({ name: 'whole run', pdds: pddsOf(calls) });
  } else {
    for (const m of run.arms) groups.push({ name: `${m.result.arm.cps} cps`, pdds: pddsOf(m.judged) });
  }
  return { profile: profile.name, description: profile.description, options: o, summary, arms, groups, ...(run.steps && { steps: run.steps }) };
}

function writeCallsCsv(file: string, arms: Measured[]): void {
  const lines = ['arm,gated,invite_unix_us,account,class,pdd_ms,status,outcome,expected,false_403,unexpected_503,from_cache'];
  for (const m of arms) {
    for (const c of m.judged) {
      lines.push([m.result.arm.label, m.result.arm.gated, c.atUs, c.account, c.accountClass, c.pddMs?.toFixed(3) ?? '', c.status ?? '', c.outcome, c.expected, c.false403, c.unexpected503, c.fromCache].join(','));
    }
  }
  writeFileSync(file, lines.join('\n') + '\n');
}
