import type { Redis } from 'ioredis';
import { defineCallScripts, type CallScripts } from '../calls/records.js';
import { parseTotals, type CallTotals } from '../calls/totals.js';
import type { Logger } from '../log.js';
import type { ControllerMetrics } from './metrics.js';
import { assessTotals, type Assessment } from './projection.js';
import { accountKey, accountOfKey, BLOCKED_RUNS_DRY_KEY, CALLS_INDEX_KEY, callsKey, DATASET_KEY, EDGES_KEY, RUNS_DRY_KEY, totalsKey } from '../redis/keys.js';

/**
 * The reconciliation sweep: a slice of the keyspace each round (SCAN), so that every account is
 * visited once per `sweepMs` whatever the size of the dataset. For each account it recomputes the
 * call totals (from the records when their count disagrees, and from every record every
 * `fullEvery` passes) and the runs-dry index entry from the hash, which catches balances edited
 * directly (a billing system, not `credit-edge account set`). What it corrects is counted and logged.
 *
 * Its writes are derived data recomputed from the truth, one atomic script per account, so they go
 * as a pipeline on the fenced connection, not as one MULTI: a MULTI of thousands of scripts would
 * hold the master for its whole length. Each script checks the dataset marker itself.
 */

export interface SweepSettings {
  sweepMs: number;
  roundMs: number;
  fullEvery: number;
}

/** Keys and arguments of RECONCILE_LUA (the reconcileAccount command). */
export function reconcileKeysArgs(id: string, full: boolean, orphan = false): string[] {
  return [callsKey(id), accountKey(id), totalsKey(id), RUNS_DRY_KEY, BLOCKED_RUNS_DRY_KEY, EDGES_KEY, DATASET_KEY, CALLS_INDEX_KEY, id, full ? '1' : '0', orphan ? 'orphan' : ''];
}

const RECONCILE_CHUNK = 250;

export interface ReconcileResult {
  accounts: number;
  calls: number;
  totalsFixed: string[];
  indexFixed: string[];
  /** Accounts with something to judge whose state does not parse. */
  unjudgeable: string[];
  /** The dataset marker was missing: nothing was written. */
  noDataset: boolean;
}

/** Runs the reconcile script for these accounts, pipelined. */
export async function reconcile(client: Redis, ids: string[], full: boolean, orphans: ReadonlySet<string> = new Set()): Promise<ReconcileResult> {
  const out: ReconcileResult = { accounts: 0, calls: 0, totalsFixed: [], indexFixed: [], unjudgeable: [], noDataset: false };
  if (ids.length === 0) return out;
  const scripted = defineCallScripts(client);
  const replies: [Error | null, unknown][] = [];
  // In chunks: a pipeline the master takes longer than the command timeout to work through would
  // fail every time, and the sweep would never move on.
  for (let i = 0; i < ids.length; i += RECONCILE_CHUNK) {
    const pipeline = scripted.pipeline() as unknown as CallScripts & { exec(): Promise<[Error | null, unknown][] | null> };
    for (const id of ids.slice(i, i + RECONCILE_CHUNK)) pipeline.reconcileAccount(...reconcileKeysArgs(id, full, orphans.has(id)));
    replies.push(...((await pipeline.exec()) ?? []));
  }
  ids.forEach((id, i) => {
    const [err, reply] = replies[i] ?? [new Error('no reply'), null];
    if (err) throw err;
    const [totals, index, status, calls] = reply as number[];
    if (totals === -1) {
      out.noDataset = true;
      return;
    }
    if (!orphans.has(id) || status !== 0 || totals !== 0 || index !== 0) out.accounts++;
    out.calls += calls ?? 0;
    if (totals === 1) out.totalsFixed.push(id);
    if (index === 1) out.indexFixed.push(id);
    if (status === 2) out.unjudgeable.push(id);
  });
  return out;
}

/** A number as Lua's tonumber reads it (undefined where it gives nil). */
function luaNumber(raw: string | null | undefined): number | undefined {
  if (raw === null || raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  return Number.isNaN(n) ? undefined : n;
}

/** A sorted-set score as Redis prints it. */
function score(raw: string | null): number | undefined {
  if (raw === null) return undefined;
  if (raw === 'inf' || raw === '+inf') return Infinity;
  if (raw === '-inf') return -Infinity;
  return Number(raw);
}

const sameScore = (a: number | undefined, b: number | undefined) => a === b || (a !== undefined && b !== undefined && Math.abs(a - b) <= 1);

/**
 * The runs-dry time the index step would write (TOTALS_LUA_LIB's runs_dry_at), to tell which
 * accounts need the reconcile script. Only a filter: the script decides and writes.
 */
export function expectedRunsDryAt(balanceRaw: string | null, rateRaw: string | null, t: CallTotals | undefined): number | undefined {
  const balance = luaNumber(balanceRaw);
  if (balance === undefined) return undefined;
  if (t && t.bad > 0) return undefined;
  const rate = luaNumber(rateRaw);
  const unrated = t?.unrated ?? 0;
  if (unrated > 0 && rate === undefined) return undefined;
  if (!t) return balance <= 0 ? -Infinity : Infinity;
  const burn = t.rated + (unrated > 0 ? rate! * unrated : 0);
  const offset = t.ratedT + (unrated > 0 ? rate! * t.unratedT : 0);
  if (burn <= 0) return balance <= 0 ? -Infinity : Infinity;
  return t.base + (balance * 60_000 + offset) / burn;
}

/** Plain reads per account; returns the accounts whose totals, listing or index entry look off. */
async function precheck(client: Redis, ids: string[]): Promise<{ suspect: string[]; accounts: number; calls: number }> {
  const out = { suspect: [] as string[], accounts: 0, calls: 0 };
  for (let i = 0; i < ids.length; i += RECONCILE_CHUNK) {
    const chunk = ids.slice(i, i + RECONCILE_CHUNK);
    const pipeline = client.pipeline();
    for (const id of chunk) {
      pipeline
        .hmget(accountKey(id), 'balance', 'rate', 'credit_blocked', 'credit_blocked_by')
        .hgetall(totalsKey(id))
        .hlen(callsKey(id))
        .zscore(RUNS_DRY_KEY, id)
        .zscore(BLOCKED_RUNS_DRY_KEY, id)
        .sismember(CALLS_INDEX_KEY, id);
    }
    const r = (await pipeline.exec()) ?? [];
    chunk.forEach((id, k) => {
      const at = (j: number) => r[6 * k + j] ?? [new Error('no reply'), null];
      if ([0, 1, 2, 3, 4, 5].some((j) => at(j)[0])) return out.suspect.push(id);
      const fields = at(0)[1] as (string | null)[];
      const totals = parseTotals(at(1)[1] as Record<string, string>);
      const count = at(2)[1] as number;
      if (!totals || totals.calls !== count || (count > 0) !== (at(5)[1] === 1)) return out.suspect.push(id);
      const t = totals.calls > 0 ? totals : undefined;
      const blocked = fields[2] === '1';
      const ours = blocked && fields[3] === 'controller';
      const runsDry = ours || (!blocked && t) ? expectedRunsDryAt(fields[0] ?? null, fields[1] ?? null, t) : undefined;
      const dry = !ours && !blocked && t ? runsDry : undefined;
      const blockedAt = ours ? runsDry : undefined;
      if (!sameScore(dry, score(at(3)[1] as string | null)) || !sameScore(blockedAt, score(at(4)[1] as string | null))) return out.suspect.push(id);
      // Something to judge that the index leaves out: the script says why (status 2).
      if (dry === undefined && blockedAt === undefined && (ours || (!blocked && count > 0 && fields[0] !== null))) return out.suspect.push(id);
      out.accounts++;
      out.calls += count;
    });
  }
  return out;
}

async function withoutAccountHash(client: Redis, ids: string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const pipeline = client.pipeline();
  for (const id of ids) pipeline.exists(accountKey(id));
  const replies = (await pipeline.exec()) ?? [];
  return ids.filter((_, i) => replies[i]?.[0] === null && replies[i]?.[1] === 0);
}

export class Sweep {
  private cursor = '0';
  private passes = 0;
  private passStartedAt = -Infinity;
  private pass = { accounts: 0, calls: 0, corrected: 0 };

  constructor(
    private readonly s: SweepSettings,
    private readonly logger: Logger,
    private readonly metrics: ControllerMetrics,
    /** Told about accounts the sweep found with something to judge but a state that does not parse. */
    private readonly noteUnknown: (a: Assessment) => void,
  ) {}

  /** A new master or a new leader starts a fresh pass. */
  restart(): void {
    this.cursor = '0';
    this.passStartedAt = -Infinity;
    this.pass = { accounts: 0, calls: 0, corrected: 0 };
  }

  /** One slice: about dbsize x roundMs / sweepMs keys. */
  async step(client: Redis, dbsize: number, now: number): Promise<void> {
    if (this.cursor === '0') {
      // A small dataset is swept in fewer rounds than the period: the next pass waits its turn.
      if (now - this.passStartedAt < this.s.sweepMs) return;
      this.passStartedAt = now;
    }
    const count = Math.max(100, Math.ceil((dbsize * this.s.roundMs) / this.s.sweepMs));
    const [next, keys] = await client.scan(this.cursor, 'COUNT', count);
    const owned = new Set<string>();
    const orphans = new Set<string>();
    for (const key of keys) {
      const of = accountOfKey(key);
      if (of && !of.expires) (of.orphan ? orphans : owned).add(of.id);
    }
    for (const id of owned) orphans.delete(id);
    const full = (this.passes + 1) % this.s.fullEvery === 0;
    // Records or totals of an account whose hash exists are covered by the hash's own visit.
    const lost = await withoutAccountHash(client, [...orphans]);
    // Outside full passes, plain reads first: the script runs only where something looks off.
    const checked = full ? { suspect: [...owned], accounts: 0, calls: 0 } : await precheck(client, [...owned]);
    const result = await reconcile(client, [...checked.suspect, ...lost], full, new Set(lost));
    if (result.noDataset) return;
    this.cursor = next;
    this.pass.accounts += result.accounts + checked.accounts;
    this.pass.calls += result.calls + checked.calls;
    this.metrics.sweepAccounts.inc(checked.accounts);
    this.report(result);
    await this.explain(client, result.unjudgeable, now);
    if (next === '0') {
      this.passes++;
      this.metrics.sweepPasses.inc();
      this.metrics.callsInProgress.set(this.pass.calls);
      this.logger.debug({ accounts: this.pass.accounts, calls: this.pass.calls, corrected: this.pass.corrected, full }, 'sweep pass done');
      this.pass = { accounts: 0, calls: 0, corrected: 0 };
    }
  }

  private report(result: ReconcileResult): void {
    this.metrics.sweepAccounts.inc(result.accounts);
    if (result.totalsFixed.length > 0) {
      this.metrics.sweepCorrections.inc({ what: 'totals' }, result.totalsFixed.length);
      this.logger.warn({ accounts: result.totalsFixed.slice(0, 50), count: result.totalsFixed.length }, 'sweep: call totals did not match the records: rebuilt from the records');
    }
    if (result.indexFixed.length > 0) {
      this.metrics.sweepCorrections.inc({ what: 'index' }, result.indexFixed.length);
      this.logger.warn({ accounts: result.indexFixed.slice(0, 50), count: result.indexFixed.length }, 'sweep: runs-dry index corrected (a balance or account edited without recomputing it, or totals rebuilt)');
    }
    this.pass.corrected += result.totalsFixed.length + result.indexFixed.length;
  }

  /** Reads the few accounts whose state does not parse, to count and log why (no action on them). */
  private async explain(client: Redis, ids: string[], now: number): Promise<void> {
    if (ids.length === 0) return;
    const pipeline = client.pipeline();
    for (const id of ids) pipeline.hgetall(accountKey(id)).hgetall(totalsKey(id));
    const replies = (await pipeline.exec()) ?? [];
    ids.forEach((id, i) => {
      const [accountErr, account] = replies[2 * i] ?? [new Error('no reply'), null];
      const [totalsErr, totals] = replies[2 * i + 1] ?? [new Error('no reply'), null];
      const a = assessTotals(
        { accountId: id, account: accountErr ? null : (account as Record<string, string>), totals: totalsErr ? null : (parseTotals(totals as Record<string, string>) ?? null) },
        now,
      );
      if (a.kind === 'unknown') this.noteUnknown(a);
    });
  }
}
