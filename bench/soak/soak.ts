import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSipp, stopAllSipp, type SippProcess } from '../../src/dev/sipp.js';
import { runnerLog, within } from '../runner-log.js';
import { figuresOf } from '../stats.js';
import { readTrace, type CallTrace } from '../trace.js';
import { check, type CheckResult } from './checker.js';
import type { CallStream, FaultWindow, SoakCall, SoakHistory, SoakSettings } from './history.js';
import { Nemesis } from './nemesis.js';
import { Operator } from './operator.js';
import { accountInput, makePopulation } from './population.js';
import { recordRedisHistory, type RedisHistory } from './redis-history.js';
import { writeSoakReport } from './report.js';
import { planFaults, planOperatorActions } from './schedule.js';
import { startSoakSystem, type SoakSystem } from './system.js';

/**
 * `npm run bench -- soak --minutes M --seed S`: the system as deployed, calls at a steady rate,
 * operator actions, and the nemesis' random overlapping faults, for M minutes; then the checker
 * judges the recorded history from the outside (SIPp's traces, the Redis history, the audit
 * stream, the runner's own records) and the report shows the faults over PDD and answers.
 */

export interface SoakOptions {
  minutes: number;
  seed: number;
  /** Short calls per second (default 20). */
  cps?: number;
  accounts?: number;
  outDir: string;
}

export interface SoakSummary {
  profile: 'soak';
  seed: number;
  minutes: number;
  calls: number;
  /** Faults the seed's schedule planned, those run (by kind), skipped (their parts busy too long), failed (the fault itself threw). */
  faults_planned: number;
  faults: number;
  faults_by_kind: Record<string, number>;
  faults_skipped: number;
  /** The skipped ones by kind (an external SIP server's restart is not the soak's to run). */
  faults_skipped_by_kind: Record<string, number>;
  faults_failed: number;
  operator_actions: number;
  violations: number;
  violations_by_kind: Partial<Record<string, number>>;
  pdd_ms: { healthy: { p50: number | null; p99: number | null }; faulted: { p50: number | null; p99: number | null } };
  figures: CheckResult['figures'];
  sip_server: string;
  started_at: string;
  duration_s: number;
  results_dir: string;
  report: string;
}

/** How long the long calls are held: long enough for a low-credit account to run dry mid-call. */
const LONG_HOLD_MS = 30_000;
/** Long calls per second. */
const LONG_CPS = 0.4;

export const SOAK_SETTINGS: SoakSettings = {
  maxStaleMs: 300_000,
  propagationMs: 3000,
  roundMs: 1000,
  blockBoundMs: 5000,
  restartSettleMs: 5000,
  // The edge's liveness TTL (15 s) + the controller's dead-edge grace (5 s) + a round.
  deadEdgeRecordMs: 21_000,
  // The block bound, the cut grace (250 ms), the edge's poll of its orders (500 ms) and the BYEs.
  cutBoundMs: 7000,
};

export async function runSoak(o: SoakOptions, note: (line: string) => void): Promise<SoakSummary> {
  const startedAt = new Date();
  const durationS = Math.round(o.minutes * 60);
  const cps = o.cps ?? 20;
  const runDir = path.join(o.outDir, `soak-seed${o.seed}-${startedAt.toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(runDir, { recursive: true });
  const log = runnerLog(runDir, { service: 'credit-edge-soak', seed: o.seed });
  const { logger } = log;
  const population = makePopulation({ seed: o.seed, accounts: o.accounts ?? 2000, shortCalls: Math.round(cps * durationS), longCalls: Math.max(1, Math.round(LONG_CPS * (durationS - LONG_HOLD_MS / 1000))), longHoldMs: LONG_HOLD_MS });
  const quietStartS = Math.min(20, durationS * 0.1);
  const quietEndS = Math.max(25, durationS * 0.05);
  // A short run still meets every kind (about 14 faults); a long one a fault every 20 s on average.
  const meanGapS = Math.min(20, (durationS - quietStartS - quietEndS) / 14);
  const window = { seed: o.seed, durationS, quietStartS, quietEndS, meanGapS };
  const faults = planFaults(window);
  const actions = planOperatorActions({ ...window, meanGapS: 10 });
  note(`soak seed ${o.seed}: ${o.minutes} min, ${cps} calls/s + ${LONG_CPS} long calls/s over ${population.accounts.length} accounts; ${faults.length} faults, ${actions.length} operator actions planned`);

  const traceDir = mkdtempSync(path.join(os.tmpdir(), 'credit-edge-soak-'));
  const started: { system?: SoakSystem; history?: RedisHistory; uacs: SippProcess[] } = { uacs: [] };
  let finished = false;
  try {
    const recorded = await within(durationS + 600, 'soak', (async () => {
      const system = (started.system = await startSoakSystem({ runDir, logger, maxStaleMs: SOAK_SETTINGS.maxStaleMs }));
      const seed: Record<string, ReturnType<typeof accountInput>> = {};
      for (const a of population.accounts) if (a.initial) seed[a.id] = accountInput(a.initial);
      await system.topology.seed(seed);
      note(`system up: ${system.sipServer.kind} ${system.sipServer.sipTarget}; edges ${system.edges.map((e) => e.name).join(', ')}; controllers ${system.controllers.map((c) => c.name).join(', ')}`);
      const history = (started.history = await recordRedisHistory(system.topology, logger));
      const operator = new Operator(system, population, logger);
      const nemesis = new Nemesis(system, operator, logger);

      // Long calls wait for the network's BYE (a cut) and answer it; short ones hang up at once.
      const uac = async (stream: CallStream, accounts: string[], rate: number, holdMs: number) => {
        const traceFile = path.join(traceDir, `${stream}.log`);
        const sipp = await startSipp({
          scenario: holdMs > 0 ? 'edge-uac-until-bye' : 'edge-uac',
          vars: { HOLD: String(holdMs), TIMEWAIT: '200' },
          remote: system.sipServer.sipTarget,
          service: 'callee',
          injection: accounts.map((a) => [a]),
          calls: accounts.length,
          rate,
          // SIPp's own default (3 x rate) would hold 0.4 calls/s of 30 s calls to one at a time.
          limit: Math.ceil(rate * (holdMs / 1000 + 5)) + 10,
          timeoutMs: durationS * 1000 + 120_000,
          traceMessages: false,
          extraArgs: ['-trace_msg', '-message_file', traceFile],
        });
        started.uacs.push(sipp);
        return { sipp, traceFile, stream };
      };
      const startMs = Date.now();
      const uacs = [await uac('short', population.shortCalls, cps, 0), await uac('long', population.longCalls, LONG_CPS, LONG_HOLD_MS)];

      const timers: NodeJS.Timeout[] = [];
      const operatorRuns: Promise<unknown>[] = [];
      for (const f of faults) timers.push(setTimeout(() => nemesis.start(f), f.atS * 1000));
      // One operator at a time, as one person types: actions queue behind each other.
      let operatorQueue: Promise<unknown> = Promise.resolve();
      for (const a of actions) {
        timers.push(
          setTimeout(() => {
            operatorQueue = operatorQueue.then(() => operator.act(a).catch((err: unknown) => logger.error({ err }, 'soak: operator action failed')));
            operatorRuns.push(operatorQueue);
          }, a.atS * 1000),
        );
      }
      const progress = setInterval(() => note(`+${Math.round((Date.now() - startMs) / 1000)} s: ${nemesis.windows.length} faults so far, ${operator.actions.length} operator actions`), 60_000);
      try {
        await Promise.all(uacs.map((u) => u.sipp.done));
      } finally {
        clearInterval(progress);
        for (const t of timers) clearTimeout(t);
      }
      note('calls done; waiting for the last faults to be undone');
      await nemesis.drain();
      await Promise.all(operatorRuns);
      const endMs = Date.now();
      // Calls have ended; records of killed edges go after their liveness lapses plus the grace.
      const deadline = Date.now() + 60_000;
      let final = await history.finalRecords();
      while ((final.leaked.length > 0 || final.ghosts.length > 0) && Date.now() < deadline) {
        await sleep(2000);
        final = await history.finalRecords();
      }
      const calls = (await Promise.all(uacs.map(async (u) => (await readTrace(u.traceFile)).map((t) => soakCallOf(t, u.stream, system))))).flat();
      const h: SoakHistory = {
        startMs,
        endMs,
        settings: SOAK_SETTINGS,
        accounts: population.accounts,
        operatorActions: operator.actions,
        calls: calls.sort((a, b) => a.inviteMs - b.inviteMs),
        faults: nemesis.windows,
        edgeRestarts: nemesis.edgeRestarts,
        masters: history.masters,
        sentinelMasters: history.sentinelMasters,
        controllerWrites: history.controllerWrites,
        audit: history.audit,
        cuts: history.cuts,
        finalRecords: final,
      };
      return { h, sipServer: system.sipServer.kind };
    })());

    const { h } = recorded;
    writeFileSync(path.join(runDir, 'history.json'), JSON.stringify(h) + '\n');
    const result = check(h);
    writeFileSync(path.join(runDir, 'violations.json'), JSON.stringify(result.violations, null, 2) + '\n');
    const summary = summarize(o, h, result, { startedAt, runDir, sipServer: recorded.sipServer, planned: faults.length });
    const report = await writeSoakReport(h, result, summary, runDir);
    summary.report = report;
    writeFileSync(path.join(runDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
    note(`results in ${path.relative(process.cwd(), runDir) || runDir}`);
    finished = true;
    return summary;
  } finally {
    if (!finished) await stopAllSipp();
    for (const u of started.uacs) await u.stop().catch(() => undefined);
    await started.history?.stop();
    await started.system?.stop();
    rmSync(traceDir, { recursive: true, force: true });
    log.close();
  }
}

/** A traced call in the history's terms: ms, and the edge that decided it. */
function soakCallOf(t: CallTrace, stream: CallStream, system: SoakSystem): SoakCall {
  const ms = (us: number | undefined) => (us === undefined ? undefined : us / 1000);
  const decidedBy = /;\s*edge=([\w.-]+)/.exec(t.decision ?? '')?.[1];
  const routedBy = t.answeredBy === undefined ? undefined : system.edges.find((e) => e.carrier === t.answeredBy)?.name;
  return {
    callId: t.callId,
    stream,
    account: t.account ?? '?',
    inviteMs: ms(t.inviteUs ?? t.answerUs) ?? 0,
    answerMs: ms(t.answerUs),
    status: t.finalStatus,
    phrase: t.finalReason,
    decision: t.decision,
    edge: decidedBy ?? routedBy,
    connectedMs: ms(t.connectedUs),
    endedMs: ms(t.byeUs),
    ...(t.byeUs !== undefined && { endedBy: t.byeReceived ? 'network' : 'caller' }),
    ...(t.byeReason !== undefined && { endReason: t.byeReason }),
    ...(t.byesReceived > 0 && { byesReceived: t.byesReceived }),
  };
}

function summarize(o: SoakOptions, h: SoakHistory, result: CheckResult, ctx: { startedAt: Date; runDir: string; sipServer: string; planned: number }): SoakSummary {
  const ran = h.faults.filter((f) => f.error === undefined || !f.error.startsWith('skipped'));
  const countByKind = (faults: typeof ran) => {
    const counts: Record<string, number> = {};
    for (const f of faults) counts[f.kind] = (counts[f.kind] ?? 0) + 1;
    return counts;
  };
  const inFault = (t: number, windows: FaultWindow[]) => windows.some((w) => t >= w.startMs && t <= (w.endMs ?? h.endMs));
  const pdd = (faulted: boolean) => {
    const f = figuresOf(h.calls.filter((c) => c.answerMs !== undefined && inFault(c.inviteMs, ran) === faulted).map((c) => c.answerMs! - c.inviteMs));
    return { p50: f?.p50 ?? null, p99: f?.p99 ?? null };
  };
  const violationsByKind = Object.fromEntries(Object.entries(result.byKind).filter(([, n]) => n > 0));
  return {
    profile: 'soak',
    seed: o.seed,
    minutes: o.minutes,
    calls: h.calls.length,
    faults_planned: ctx.planned,
    faults: ran.length,
    faults_by_kind: countByKind(ran),
    faults_skipped: h.faults.length - ran.length,
    faults_skipped_by_kind: countByKind(h.faults.filter((f) => !ran.includes(f))),
    faults_failed: ran.filter((f) => f.error !== undefined).length,
    operator_actions: h.operatorActions.length,
    violations: result.violations.length,
    violations_by_kind: violationsByKind,
    pdd_ms: { healthy: pdd(false), faulted: pdd(true) },
    figures: result.figures,
    sip_server: ctx.sipServer,
    started_at: ctx.startedAt.toISOString(),
    duration_s: Math.round((Date.now() - ctx.startedAt.getTime()) / 100) / 10,
    results_dir: ctx.runDir,
    report: '',
  };
}
