import type { ChainableCommander } from 'ioredis';
import { encodeCutOrder } from '../calls/cut-orders.js';
import { callEndArgs, defineCallScripts, type CallScripts } from '../calls/records.js';
import { reindexKeysArgs, splitEdgeMember } from '../calls/totals.js';
import type { Logger } from '../log.js';
import { appendAudit, type AuditEntry } from './audit.js';
import { Breaker, type BreakerSettings } from './breaker.js';
import { Lease } from './lease.js';
import type { Fence, FencedMaster } from './master.js';
import type { ControllerMetrics } from './metrics.js';
import { actionFor, assessTotals, BLOCKED_BY_FIELD, CONTROLLER_MARK, EVIDENCE_FIELD, type Assessed, type Assessment } from './projection.js';
import { readCallsToCut, readCandidates, type CallToCut, type CandidateReads, readEdgeCalls, readIndex, readLiveness, type RoundIndex } from './reads.js';
import { migrateLayout } from './migration.js';
import { Sweep } from './sweep.js';
import { accountKey, BLOCKED_INDEX_KEY, CONFIRM_BLOCKS_KEY, cutOrdersKey, EDGES_KEY, LAYOUT_VERSION } from '../redis/keys.js';

export interface ControllerSettings {
  /** This controller's name; the lease holder id adds a random part per process. */
  name: string;
  holderId: string;
  roundMs: number;
  leaseMs: number;
  deadEdgeGraceMs: number;
  auditMaxLen: number;
  breaker: BreakerSettings;
  /** The reconciliation sweep visits every account once per this period. */
  sweepMs: number;
  sweepFullEvery: number;
  maxAccountsPerRound: number;
  maxStaleCallsPerRound: number;
  /** Calls of an account out of credit: ordered ended `graceMs` after its projection reached zero. */
  cutCalls: { enabled: boolean; dryRun: boolean; graceMs: number };
}

/** What one round saw and did (for tests, status lines and the log). */
export interface RoundReport {
  outcome: 'acted' | 'standby' | 'no-master' | 'read-failed' | 'dataset-missing';
  why?: string;
  master?: string;
  evaluated: number;
  unknown: number;
  blocked: string[];
  unblocked: string[];
  held: string[];
  staleCallsRemoved: number;
  /** Call-IDs ordered ended (or, in dry run, that would have been). */
  cut: string[];
  /** Call-IDs whose cut the breaker held back. */
  cutsHeld: string[];
  /** Whether the round's writes were confirmed (undefined: nothing to write). */
  written?: boolean;
  /** How long the round took (fence to write), and the sweep's slice after it. */
  roundMs?: number;
  sweepMs?: number;
}

interface StaleCall {
  accountId: string;
  callId: string;
  node: string;
  instance: string;
}

/**
 * The credit controller. Every round (one at a time, never overlapping): prove where the master
 * is (fence), hold the lease, check the dataset marker, read the runs-dry index (accounts whose
 * projection reached zero, and blocks of ours that may lift: src/calls/totals.ts) and the edges'
 * liveness, re-read and judge just those accounts from their hash and call totals (projection.ts),
 * apply the breaker, then write blocks, unblocks and removals of dead edges' calls in one fenced
 * batch with their audit entries. A slice of the reconciliation sweep follows. What a round costs
 * grows with what is due, not with the number of accounts or calls.
 */
export class CreditController {
  private readonly lease: Lease;
  readonly breaker: Breaker;
  /** The same thresholds for cuts: many accounts' calls to end at once is likelier a fault of ours. */
  readonly cutBreaker: Breaker;
  /** Calls a dry run has audited, so each is audited once (forgotten past 100,000). */
  private readonly dryRunAudited = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  private leader = false;
  private lastNoMaster: string | undefined;
  /** "node|instance" -> when its liveness was first seen missing. */
  private readonly deadSince = new Map<string, number>();
  /** account -> the unknown cause last logged, so a lasting fault logs once, not every round. */
  private readonly unknownLogged = new Map<string, string>();
  private readonly sweep: Sweep;
  private datasetMissingLogged = false;
  /** Set by a round that acted: the sweep's slice follows it. */
  private sweepDbsize: number | undefined;
  /** The master (address/generation) on which the layout was checked. */
  private layoutCheckedOn: string | undefined;
  lastReport: RoundReport | undefined;

  constructor(
    private readonly master: FencedMaster,
    private readonly s: ControllerSettings,
    private readonly logger: Logger,
    private readonly metrics: ControllerMetrics,
    private readonly clock: () => number = Date.now,
  ) {
    this.lease = new Lease(master.client, s.holderId, s.leaseMs);
    this.breaker = new Breaker(s.breaker);
    this.cutBreaker = new Breaker(s.breaker);
    // EVALSHA for the call scripts in write batches and the sweep's pipelines.
    defineCallScripts(master.client);
    this.sweep = new Sweep({ sweepMs: s.sweepMs, roundMs: s.roundMs, fullEvery: s.sweepFullEvery }, logger, metrics, (a) => this.noteUnknown(a));
  }

  get isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      const started = this.clock();
      this.running = this.round().catch((err: unknown) => this.logger.error({ err }, 'round failed'));
      await this.running;
      if (!this.stopped) this.timer = setTimeout(loop, Math.max(0, this.s.roundMs - (this.clock() - started)));
    };
    void loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    if (this.leader) {
      await this.lease.release().catch(() => undefined);
      this.setLeader(false, 'stopping');
    }
  }

  /**
   * One round, then (when it acted) one slice of the reconciliation sweep, on the same connection
   * after the round's batch (so it cannot abort it) and timed apart: the round is what finds and
   * acts on accounts; the sweep is upkeep.
   */
  async round(): Promise<RoundReport> {
    const endTimer = this.metrics.roundSeconds.startTimer();
    const started = performance.now();
    this.sweepDbsize = undefined;
    const report = await this.roundInner();
    report.roundMs = performance.now() - started;
    endTimer();
    this.metrics.rounds.inc({ outcome: report.outcome });
    if (this.sweepDbsize !== undefined) {
      const sweepStarted = performance.now();
      try {
        await this.sweep.step(this.master.client, this.sweepDbsize, this.clock());
      } catch (err) {
        this.logger.warn({ master: report.master, err: (err as Error).message }, 'sweep step failed; it resumes next round');
      }
      report.sweepMs = performance.now() - sweepStarted;
      this.metrics.sweepStepSeconds.observe(report.sweepMs / 1000);
    }
    this.lastReport = report;
    return report;
  }

  private empty(outcome: RoundReport['outcome'], why?: string, master?: string): RoundReport {
    return { outcome, ...(why !== undefined && { why }), ...(master !== undefined && { master }), evaluated: 0, unknown: 0, blocked: [], unblocked: [], held: [], staleCallsRemoved: 0, cut: [], cutsHeld: [] };
  }

  private async roundInner(): Promise<RoundReport> {
    const fenced = await this.master.fence();
    if (!fenced.ok) return this.noMaster(fenced.why);
    const fence = fenced.fence;
    if (this.lastNoMaster !== undefined) this.logger.info({ master: fence.address }, 'master reachable again');
    this.lastNoMaster = undefined;

    try {
      this.setLeader(await this.lease.hold(), fence.address);
    } catch (err) {
      return this.noMaster(`lease on ${fence.address}: ${(err as Error).message}`);
    }
    if (!this.leader) return this.empty('standby', undefined, fence.address);

    const client = this.master.client;
    const now = this.clock();
    let index: RoundIndex;
    try {
      const { cutCalls } = this.s;
      index = await readIndex(client, now, this.s.maxAccountsPerRound, cutCalls.enabled ? now - cutCalls.graceMs : undefined);
    } catch (err) {
      return this.readFailed(fence, err);
    }
    if (index.datasetId === null) return this.datasetMissing(fence);
    if (this.datasetMissingLogged) this.logger.warn({ master: fence.address, dataset: index.datasetId }, 'dataset marker present again: judging accounts again');
    this.datasetMissingLogged = false;
    this.metrics.datasetMissing.set(0);

    const onMaster = `${fence.address}#${fence.generation}`;
    if (this.layoutCheckedOn !== onMaster || index.legacyIndexes) {
      if (index.layout !== LAYOUT_VERSION || index.legacyIndexes) {
        try {
          const migrated = await migrateLayout(client, index.layout, this.logger);
          if (!migrated.done) return this.datasetMissing(fence);
        } catch (err) {
          return this.readFailed(fence, err);
        }
      }
      if (this.layoutCheckedOn !== onMaster) this.sweep.restart();
      this.layoutCheckedOn = onMaster;
    }

    const report = await this.judgeAndWrite(fence, index, now);
    if (report.outcome === 'acted') this.sweepDbsize = index.dbsize;
    return report;
  }

  private async readFailed(fence: Fence, err: unknown): Promise<RoundReport> {
    await this.master.client.unwatch().catch(() => undefined);
    this.logger.warn({ master: fence.address, err: (err as Error).message }, 'round reads failed: no account judged this round');
    return this.empty('read-failed', (err as Error).message, fence.address);
  }

  /** No marker: the master's data may be lost or flushed; nothing there is evidence of anything. */
  private datasetMissing(fence: Fence): RoundReport {
    if (!this.datasetMissingLogged) {
      this.logger.error({ alert: true, master: fence.address }, 'DATASET MARKER MISSING on the master: judging nothing, writing nothing (no block, no unblock, no call removed) until it is back');
      this.datasetMissingLogged = true;
    }
    this.metrics.datasetMissing.set(1);
    return this.empty('dataset-missing', 'no dataset marker on the master', fence.address);
  }

  private async judgeAndWrite(fence: Fence, index: RoundIndex, now: number): Promise<RoundReport> {
    const report = this.empty('acted', undefined, fence.address);
    const client = this.master.client;
    let stale: StaleCall[];
    let inDoubt: Set<string>;
    let emptyEdges: string[];
    let candidates: Map<string, CandidateReads>;
    try {
      ({ stale, inDoubt, emptyEdges } = await this.deadEdgeCalls(index.edges, now));
      const ids = [...new Set([...index.dueAt.keys(), ...index.liftable, ...index.cuttable])].sort();
      candidates = await readCandidates(client, ids);
    } catch (err) {
      return this.readFailed(fence, err);
    }

    const assessments: Assessment[] = [];
    for (const [accountId, reads] of candidates) {
      const assessment = assessTotals({ accountId, account: reads.account, totals: reads.totals, inDoubt: inDoubt.has(accountId) }, now);
      assessments.push(assessment);
      this.noteUnknown(assessment);
    }
    report.evaluated = assessments.length;
    const assessedById = new Map(assessments.map((a) => [a.accountId, a]));
    report.unknown = assessments.filter((a) => a.kind === 'unknown').length;
    this.metrics.accountsEvaluated.set(report.evaluated);

    const toBlock = assessments.filter((a): a is Assessed => actionFor(a) === 'block');
    const toUnblock = assessments.filter((a): a is Assessed => actionFor(a) === 'unblock');
    // Index entries that were wrong (an edit that did not recompute them): set right in the batch.
    const toReindex = assessments.filter((a) => actionFor(a) === 'none' && !(a.kind === 'unknown' && a.cause === 'edge-in-doubt')).map((a) => a.accountId);
    // Due accounts left for the next round count for the breaker too.
    const dueLeft = Math.max(0, index.dueTotal - index.dueAt.size);
    const verdict = this.breaker.judge(toBlock.length + dueLeft, Math.max(index.accountsWithCalls, report.evaluated), now);
    let blocks = toBlock;
    let confirmed = false;
    if (verdict.open) {
      if (index.confirmBlocks !== null) {
        confirmed = true;
        this.logger.warn({ confirmedBy: index.confirmBlocks, accounts: toBlock.map((a) => a.accountId) }, 'breaker: an operator confirmed the held blocks');
        this.breaker.confirmed();
      } else {
        blocks = [];
        report.held = toBlock.map((a) => a.accountId);
        if (verdict.changed) {
          this.metrics.breakerTrips.inc();
          // The alarm: mass blocking is likelier a fault of ours than a crowd running dry at once.
          this.logger.error({ critical: true, alert: 'credit-controller-breaker-open', why: verdict.why, held: report.held }, 'BREAKER OPEN: blocking none of these accounts; confirm with `credit-edge controller --confirm-blocks` if they are real');
        }
      }
    } else if (verdict.changed) {
      this.logger.warn({ why: 'the condition cleared' }, 'breaker closed');
    }
    this.metrics.breakerOpen.set(this.breaker.open ? 1 : 0);
    this.metrics.blocksHeld.set(report.held.length);

    let cuts: CallToCut[];
    try {
      let held: CallToCut[];
      ({ cuts, held } = await this.callsToCut(index, assessedById, blocks, now));
      report.cutsHeld = held.map((c) => c.callId);
    } catch (err) {
      return this.readFailed(fence, err);
    }
    // An operator's confirmation lets the held cuts through too (and is used up, as for blocks).
    const cutsConfirmed = cuts.length > 0 && index.confirmBlocks !== null;
    const dryRun = this.s.cutCalls.dryRun;

    if (blocks.length === 0 && toUnblock.length === 0 && stale.length === 0 && toReindex.length === 0 && emptyEdges.length === 0 && cuts.length === 0 && !confirmed && !cutsConfirmed) {
      await client.unwatch().catch(() => undefined);
      return report;
    }

    const at = new Date(now).toISOString();
    const audits: AuditEntry[] = [];
    const result = await this.master.write(fence, (tx) => {
      for (const a of blocks) audits.push(this.block(tx, a, fence.address, at, confirmed ? index.confirmBlocks : null));
      for (const a of toUnblock) audits.push(this.unblock(tx, a, fence.address, at));
      for (const id of toReindex) scripts(tx).reindexAccount(...reindexKeysArgs(id));
      for (const entry of this.removeStale(tx, stale, fence.address, at, now)) audits.push(entry);
      for (const c of cuts) audits.push(this.cut(tx, c, assessedById.get(c.accountId) as Assessed, fence.address, at, now, dryRun));
      if (emptyEdges.length > 0) tx.srem(EDGES_KEY, ...emptyEdges);
      if (confirmed || cutsConfirmed) tx.del(CONFIRM_BLOCKS_KEY);
      for (const entry of audits) appendAudit(tx, entry, this.s.auditMaxLen);
    });
    report.written = result.done;
    if (!result.done) {
      // Not done: nothing is assumed; the next round reads what is really on the master.
      this.metrics.writesNotDone.inc({ why: shortWhy(result.why) });
      this.logger.warn({ master: fence.address, why: result.why, blocks: blocks.map((a) => a.accountId), unblocks: toUnblock.map((a) => a.accountId), staleCalls: stale.length }, 'write batch not done');
      return report;
    }
    this.breaker.record(blocks.length, now);
    this.metrics.blocks.inc(blocks.length);
    this.metrics.unblocks.inc(toUnblock.length);
    this.metrics.staleCallsRemoved.inc(stale.length);
    if (cuts.length > 0) {
      this.cutBreaker.record(new Set(cuts.map((c) => c.accountId)).size, now);
      this.metrics.cuts.inc({ mode: dryRun ? 'dry-run' : 'cut' }, cuts.length);
      if (dryRun) {
        if (this.dryRunAudited.size > 100_000) this.dryRunAudited.clear();
        for (const c of cuts) this.dryRunAudited.add(c.callId);
      }
    }
    report.cut = cuts.map((c) => c.callId);
    report.blocked = blocks.map((a) => a.accountId);
    report.unblocked = toUnblock.map((a) => a.accountId);
    report.staleCallsRemoved = stale.length;
    for (const entry of audits) {
      const evidence = JSON.parse(entry.evidence) as { callId?: string };
      // A cut is about one call: its line carries the Call-ID, as every line about a call does.
      this.logger.info({ ...(evidence.callId !== undefined && { callId: evidence.callId }), account: entry.account, action: entry.action, reason: entry.reason, evidence, master: entry.master, replicasAcknowledged: result.acknowledgedBy }, `audit: ${entry.action}`);
    }
    return report;
  }

  private block(tx: ChainableCommander, a: Assessed, master: string, at: string, confirmedBy: string | null): AuditEntry {
    const evidence = JSON.stringify({ balance: a.balance, spent: a.spent, projected: a.projected, calls: a.calls, master, at, ...(confirmedBy !== null && { confirmedBy }) });
    const reason = `projected balance ${a.projected} <= 0: balance ${a.balance}, ${a.calls} call(s) in progress costing ${a.spent} so far`;
    tx.hset(accountKey(a.accountId), 'credit_blocked', '1', 'credit_block_reason', reason, EVIDENCE_FIELD, evidence, BLOCKED_BY_FIELD, CONTROLLER_MARK);
    tx.sadd(BLOCKED_INDEX_KEY, a.accountId);
    scripts(tx).reindexAccount(...reindexKeysArgs(a.accountId));
    return { action: 'block', account: a.accountId, reason, evidence, controller: this.s.name, master, at };
  }

  private unblock(tx: ChainableCommander, a: Assessed, master: string, at: string): AuditEntry {
    const evidence = JSON.stringify({ balance: a.balance, spent: a.spent, projected: a.projected, calls: a.calls, master, at });
    const reason = `projected balance ${a.projected} > 0 again: balance ${a.balance}, ${a.calls} call(s) in progress`;
    tx.hset(accountKey(a.accountId), 'credit_blocked', '0');
    tx.hdel(accountKey(a.accountId), 'credit_block_reason', EVIDENCE_FIELD, BLOCKED_BY_FIELD);
    tx.srem(BLOCKED_INDEX_KEY, a.accountId);
    scripts(tx).reindexAccount(...reindexKeysArgs(a.accountId));
    return { action: 'unblock', account: a.accountId, reason, evidence, controller: this.s.name, master, at };
  }

  /**
   * The calls to order ended this round: those of accounts whose projection reached zero at least
   * `graceMs` ago, re-judged exhausted now by the rules that block them (an unknown, funded or
   * unlimited account is never cut) and blocked (before, or in this batch: `blocks`, what the
   * block breaker let through), not ordered already; none while the cut breaker is open and no
   * operator has confirmed.
   */
  private async callsToCut(index: RoundIndex, byId: Map<string, Assessment>, blocks: Assessed[], now: number): Promise<{ cuts: CallToCut[]; held: CallToCut[] }> {
    if (!this.s.cutCalls.enabled) return { cuts: [], held: [] };
    const cutBefore = now - this.s.cutCalls.graceMs;
    const exhausted = [
      ...index.cuttable.filter((id) => {
        const a = byId.get(id);
        return a?.kind === 'exhausted' && a.creditBlocked;
      }),
      ...blocks.filter((a) => (index.dueAt.get(a.accountId) ?? Infinity) <= cutBefore).map((a) => a.accountId),
    ];
    let cuts = await readCallsToCut(this.master.client, exhausted);
    if (this.s.cutCalls.dryRun) cuts = cuts.filter((c) => !this.dryRunAudited.has(c.callId));
    const accounts = [...new Set(cuts.map((c) => c.accountId))];
    const verdict = this.cutBreaker.judge(accounts.length, Math.max(index.accountsWithCalls, byId.size), now);
    let held: CallToCut[] = [];
    if (verdict.open && index.confirmBlocks === null) {
      held = cuts;
      cuts = [];
      if (verdict.changed) {
        this.metrics.breakerTrips.inc();
        this.logger.error({ critical: true, alert: 'credit-controller-breaker-open', why: verdict.why, accounts }, 'BREAKER OPEN: cutting no calls of these accounts; confirm with `credit-edge controller --confirm-blocks` if they are really out of credit');
      }
    } else if (verdict.changed) {
      this.logger.warn({ why: 'the condition cleared' }, 'cut breaker closed');
    }
    this.metrics.cutsHeld.set(held.length);
    return { cuts, held };
  }

  private cut(tx: ChainableCommander, c: CallToCut, a: Assessed, master: string, at: string, now: number, dryRun: boolean): AuditEntry {
    const evidence = JSON.stringify({ callId: c.callId, edge: c.edge, balance: a.balance, spent: a.spent, projected: a.projected, calls: a.calls, graceMs: this.s.cutCalls.graceMs, master, at });
    const reason = `call ${c.callId} on ${c.edge}: projected balance ${a.projected} <= 0 for ${this.s.cutCalls.graceMs} ms or more${dryRun ? ' (dry run: not ended)' : ''}`;
    if (!dryRun) {
      tx.hset(cutOrdersKey(c.edge), c.callId, encodeCutOrder({ account: c.accountId, decidedAt: now, controller: this.s.name }));
    }
    return { action: dryRun ? 'cut-dry-run' : 'cut', account: c.accountId, reason, evidence, controller: this.s.name, master, at };
  }

  private removeStale(tx: ChainableCommander, stale: StaleCall[], master: string, at: string, now: number): AuditEntry[] {
    const byAccountNode = new Map<string, StaleCall[]>();
    for (const call of stale) {
      // Debited up to now: the edge that carried it is gone, and so is the call's end time.
      scripts(tx).callEnd(...callEndArgs(call.accountId, call.callId, now, call));
      const key = `${call.accountId}|${call.node}`;
      byAccountNode.set(key, [...(byAccountNode.get(key) ?? []), call]);
    }
    return [...byAccountNode.values()].map((calls) => ({
      action: 'calls-removed' as const,
      account: calls[0]!.accountId,
      reason: `edge ${calls[0]!.node} stopped renewing its liveness more than ${this.s.deadEdgeGraceMs} ms ago: ${calls.length} call record(s) removed`,
      evidence: JSON.stringify({ node: calls[0]!.node, callIds: calls.map((c) => c.callId), master, at }),
      controller: this.s.name,
      master,
      at,
    }));
  }

  /**
   * Edge processes that no longer renew their liveness (key gone, or renewed by a new process of
   * the same node): their calls are in doubt during the grace period (their accounts are unknown),
   * then stale. Only dead edges' call lists are read (calls:edge:{node}:{instance}).
   */
  private async deadEdgeCalls(edges: string[], now: number): Promise<{ stale: StaleCall[]; inDoubt: Set<string>; emptyEdges: string[] }> {
    const stale: StaleCall[] = [];
    const inDoubt = new Set<string>();
    const emptyEdges: string[] = [];
    const byMember = edges.map((member) => ({ member, ...splitEdgeMember(member) }));
    const liveness = await readLiveness(this.master.client, [...new Set(byMember.map((e) => e.node))]);
    const dead = byMember.filter((e) => liveness.get(e.node) !== e.instance);
    const seenDead = new Set<string>();
    const pastGrace: typeof dead = [];
    for (const e of dead) {
      seenDead.add(e.member);
      if (!this.deadSince.has(e.member)) {
        this.deadSince.set(e.member, now);
        this.logger.warn({ node: e.node, instance: e.instance, graceMs: this.s.deadEdgeGraceMs }, 'edge liveness lapsed: its calls are in doubt until the grace period ends');
      }
      if (now - this.deadSince.get(e.member)! >= this.s.deadEdgeGraceMs) pastGrace.push(e);
    }
    // An edge that came back (or whose calls are gone) starts a fresh grace period next time.
    for (const key of [...this.deadSince.keys()]) if (!seenDead.has(key)) this.deadSince.delete(key);
    if (dead.length === 0) return { stale, inDoubt, emptyEdges };

    const calls = await readEdgeCalls(this.master.client, dead.map((e) => e.member));
    for (const e of dead) {
      const gone = pastGrace.includes(e);
      const list = Object.entries(calls.get(e.member) ?? {});
      // A dead edge process with no calls left: off the list (the call steps leave that to us).
      if (list.length === 0) emptyEdges.push(e.member);
      for (const [callId, accountId] of list) {
        if (gone && stale.length < this.s.maxStaleCallsPerRound) stale.push({ accountId, callId, node: e.node, instance: e.instance });
        // Past the grace period but left for the next round: still in doubt.
        else inDoubt.add(accountId);
      }
    }
    return { stale, inDoubt, emptyEdges };
  }

  private noteUnknown(assessment: Assessment): void {
    const { accountId } = assessment;
    if (assessment.kind === 'unknown') {
      this.metrics.unknownAccounts.inc({ cause: assessment.cause });
      if (this.unknownLogged.get(accountId) !== assessment.cause) {
        this.logger.warn({ account: accountId, cause: assessment.cause, detail: assessment.detail }, 'account unknown this round: no block, no unblock');
        this.unknownLogged.set(accountId, assessment.cause);
      }
    } else if (this.unknownLogged.delete(accountId)) {
      this.logger.info({ account: accountId }, 'account readable again');
    }
  }

  private noMaster(why: string): RoundReport {
    if (this.lastNoMaster !== why) this.logger.warn({ why }, 'no fenced master this round: nothing judged, nothing written');
    this.lastNoMaster = why;
    // Without a master we cannot prove we hold the lease: act as a standby until we can.
    this.setLeader(false, why);
    return this.empty('no-master', why);
  }

  private setLeader(leader: boolean, detail: string): void {
    if (leader !== this.leader) {
      this.logger.warn({ holder: this.s.holderId, detail }, leader ? 'holding the controller lease: acting' : 'not holding the controller lease: standing by');
    }
    this.leader = leader;
    this.metrics.leader.set(leader ? 1 : 0);
  }

  /** controller.cut_calls reloaded: the next round decides with it (a cut already ordered stands). */
  setCutCalls(cutCalls: ControllerSettings['cutCalls']): void {
    this.s.cutCalls = { ...cutCalls };
    this.logger.warn({ cutCalls }, cutCalls.enabled ? (cutCalls.dryRun ? 'cutting calls: dry run (audited, none ended)' : 'cutting calls: on') : 'cutting calls: off');
  }

  status(): string {
    const r = this.lastReport;
    if (!r) return 'starting';
    const role = this.leader ? 'acting' : 'standby';
    const breaker = this.breaker.open ? `, BREAKER OPEN (${this.breaker.why})` : '';
    return `${role} on ${r.master ?? 'no master'}: last round ${r.outcome}${r.why ? ` (${r.why})` : ''}, ${r.evaluated} accounts, ${r.unknown} unknown${breaker}`;
  }
}

/** A MULTI of the master client, with the call scripts defined on that client. */
const scripts = (tx: ChainableCommander) => tx as unknown as CallScripts;

/** A low-cardinality label for the not-done metric. */
function shortWhy(why: string): string {
  if (why.includes('EXEC aborted')) return 'aborted';
  if (why.includes('replicas acknowledged') || why.startsWith('WAIT')) return 'not-acknowledged';
  if (why.includes('Sentinel') || why.includes('ROLE') || why.includes('connection')) return 'not-fenced';
  return 'error';
}
