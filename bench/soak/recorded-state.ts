import type { AccountDefinition, AuditRecord, OperatorAction, RecordedAccount } from './history.js';

/**
 * What each account's recorded state may have been at any instant, from its definition, the
 * operator's actions and the audit stream (pure). The checker never needs "the" state: a command
 * takes effect somewhere between its start and its end, and a change takes up to the propagation
 * time to reach every edge, so around each change both states are *possible*. A violation is only
 * called when every possible state disagrees with what the caller got.
 */

/** One state an account may have had, and when. */
export interface StateVersion {
  /** null: the account does not exist. */
  state: RecordedAccount | null;
  /** Earliest instant it may decide calls (the command's start; -Infinity for the definition). */
  from: number;
  /** First instant it can no longer decide calls (Infinity: to the end). */
  until: number;
  /** When it was written on the master: the command's [atMs, doneMs] ([-Infinity, -Infinity] for the definition). */
  written: { from: number; to: number };
  /**
   * When its balance was last *set*: its own command for a top-up or a create, else the version
   * before it (a block or unblock leaves the balance field as it is, debits included). The credit
   * model charges every call that ended after this to this balance.
   */
  balanceSet: { from: number; to: number };
  /** From a command that failed: it may have been applied (a timeout after the write), never certainly. */
  uncertain: boolean;
  /** The action that wrote it (undefined: the definition). */
  action?: OperatorAction;
}

/** A block in the audit stream, until the next unblock of the account (by anyone) or the loss of the dataset. */
export interface BlockPeriod {
  by: AuditRecord['by'];
  atMs: number;
  /** The unblock's instant; Infinity when none followed. */
  liftedMs: number;
}

export class RecordedStates {
  private readonly versionsOf = new Map<string, StateVersion[]>();
  private readonly blocksOf = new Map<string, BlockPeriod[]>();

  constructor(
    accounts: readonly AccountDefinition[],
    actions: readonly OperatorAction[],
    audit: readonly AuditRecord[],
    private readonly propagationMs: number,
    /** Windows in which the whole dataset was lost (every block with it) and re-provisioned without them. */
    wipes: readonly { from: number; to: number }[] = [],
  ) {
    const byAccount = new Map<string, OperatorAction[]>();
    for (const a of actions) {
      if (a.account === undefined || a.after === undefined) continue; // a config reload
      const list = byAccount.get(a.account);
      if (list) list.push(a);
      else byAccount.set(a.account, [a]);
    }
    const ids = new Set([...accounts.map((a) => a.id), ...byAccount.keys()]);
    const initial = new Map(accounts.map((a) => [a.id, a.initial]));
    for (const id of ids) this.versionsOf.set(id, versions(initial.get(id) ?? null, byAccount.get(id) ?? [], propagationMs));

    const records = [...audit].sort((a, b) => a.atMs - b.atMs);
    for (const r of records) {
      const periods = this.blocksOf.get(r.account) ?? [];
      if (r.action === 'block') periods.push({ by: r.by, atMs: r.atMs, liftedMs: Infinity });
      else for (const p of periods) if (p.liftedMs === Infinity) p.liftedMs = r.atMs;
      this.blocksOf.set(r.account, periods);
    }
    // A block lost with the dataset is gone once it was re-provisioned, unblock record or not.
    for (const periods of this.blocksOf.values()) {
      for (const p of periods) {
        const wipe = wipes.filter((w) => w.from >= p.atMs).sort((a, b) => a.from - b.from)[0];
        if (wipe) p.liftedMs = Math.min(p.liftedMs, wipe.to);
      }
    }
  }

  /** Every state the account may have had; an account nobody defined never existed. */
  versions(account: string): StateVersion[] {
    return this.versionsOf.get(account) ?? [{ state: null, from: -Infinity, until: Infinity, written: BEFORE_THE_RUN, balanceSet: BEFORE_THE_RUN, uncertain: false }];
  }

  /** The states that may have decided a call at some instant of [from, to]. */
  possibleOver(account: string, from: number, to: number): StateVersion[] {
    return this.versions(account).filter((v) => v.from <= to && v.until > from);
  }

  /** Blocks and unblocks from the audit stream, by anyone. */
  blockPeriods(account: string): BlockPeriod[] {
    return this.blocksOf.get(account) ?? [];
  }

  /**
   * Audit blocks that may have been in effect at some instant of [from, to]: a block reaches the
   * edges up to the propagation time after the master wrote it, and so does its lift; and the
   * stream id is the master's clock, so the slack goes both ways.
   */
  blocksOver(account: string, from: number, to: number): BlockPeriod[] {
    const p = this.propagationMs;
    return this.blockPeriods(account).filter((b) => b.atMs - p <= to && b.liftedMs + p >= from);
  }
}

/**
 * The versions of one account. Successful actions in the order they started: version j may decide
 * calls from its command's start until a later command that started after j's was done has itself
 * been done and propagated (commands that overlap may land in either order: both stay possible).
 * A failed action's state is possible from its start to the end of the run.
 */
function versions(initial: RecordedAccount | null, actions: OperatorAction[], propagationMs: number): StateVersion[] {
  const ok = actions.filter((a) => a.ok).sort((a, b) => a.atMs - b.atMs);
  const out: StateVersion[] = [{ state: initial, from: -Infinity, until: Infinity, written: BEFORE_THE_RUN, balanceSet: BEFORE_THE_RUN, uncertain: false }];
  for (const a of ok) {
    const written = { from: a.atMs, to: a.doneMs };
    out.push({ state: a.after ?? null, from: a.atMs, until: Infinity, written, balanceSet: SETS_BALANCE.includes(a.kind) ? written : out[out.length - 1]!.balanceSet, uncertain: false, action: a });
  }
  for (const v of out) {
    for (const later of ok) {
      if (later.atMs >= v.written.to && later !== v.action) v.until = Math.min(v.until, later.doneMs + propagationMs);
    }
  }
  for (const a of actions.filter((x) => !x.ok)) {
    // Never certainly written: its set may have landed at any instant after its start.
    const written = { from: a.atMs, to: Infinity };
    const before = [...out].reverse().find((v) => !v.uncertain && v.from <= a.atMs) ?? out[0]!;
    out.push({ state: a.after ?? null, from: a.atMs, until: Infinity, written, balanceSet: SETS_BALANCE.includes(a.kind) ? written : before.balanceSet, uncertain: true, action: a });
  }
  return out;
}

const BEFORE_THE_RUN = { from: -Infinity, to: -Infinity };
/** The operator actions that write the balance field (`account set balance=...`, a new account). */
const SETS_BALANCE: readonly OperatorAction['kind'][] = ['top-up', 'create'];
