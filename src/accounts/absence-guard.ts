import type { Logger } from '../log.js';
import type { CachedAccount, Unknown } from './lookup.js';

export interface AbsenceGuardSettings {
  /** How far back absences of recently found accounts are counted. */
  windowMs: number;
  /** Opens when at least this many recently found accounts turned absent within the window ... */
  minAccounts: number;
  /** ... and, over the last confirmMs, at least this share of the lookups of recently found accounts found them absent. */
  minShare: number;
  /** A recently found account that reads absent is held this long before the absence counts as real. */
  confirmMs: number;
  /** "Recently found": a cached copy no older than this (the stale cache's max-stale). */
  maxStaleMs: number;
}

export interface AbsenceGuardState {
  open: boolean;
  /** Recently found accounts that turned absent within the window. */
  absences: number;
  openedAt?: number;
  why?: string;
  /** While open: some of the accounts that turned absent (at most ACCOUNTS_SHOWN), for the shared hold to check later. */
  accounts?: string[];
  /** Peer edges whose own guard is open: absences are held here too while any is. */
  heldBy?: string[];
}

/** A peer edge's open guard, as it shares it (src/accounts/absence-hold.ts). */
export interface PeerHold {
  /** `{node}:{instance}` of the edge process. */
  edge: string;
  openedAt: number;
  why: string;
}

/** How long, past the confirmation time, a peer's open guard may take to reach this edge (its write and this edge's read). */
const PEER_HOLD_ARRIVAL_MS = 1000;

/**
 * The mass-absence guard. One deleted account is news; a crowd of accounts this edge found a
 * moment ago all turning absent at once is a lost or gutted dataset (a bad migration, a script's
 * DEL, a partial restore), and answering each with 403 Forbidden would be the incident again.
 *
 * - An account with a cached copy younger than max-stale that reads *absent* is held as *unknown*
 *   (`absence-unconfirmed`) for `confirmMs`, so the stale cache answers while the guard counts.
 *   Still absent after that, with the guard closed: the absence is real (403 Forbidden).
 * - When `minAccounts` such accounts turned absent within `windowMs`, and they make at least
 *   `minShare` of the lookups of recently found accounts over the last `confirmMs` (so a few
 *   deletions a minute on a busy edge never trip it, and a crowd trips it well inside the
 *   confirmation time), the guard opens: every *absent* answer is held as *unknown*
 *   (`mass-absence`): cached accounts are served from the cache, others get 503.
 * - It closes by itself once no cached account has read absent for `windowMs` (the data came
 *   back), or when an operator accepts the deletions (the dataset watch's mark changes): absences
 *   from before then are real at once, and counting starts afresh.
 * - A peer edge's open guard holds absences here too (`setPeerHolds`): an edge that has just
 *   started has no copies to count with, and would otherwise answer 403 to a crowd its peers
 *   recognised (the randomized soak found exactly that). So that such a hold has time to arrive,
 *   an edge that began reading the dataset less than `confirmMs` + 1 s ago holds an absence it
 *   has no copy of as `absence-unconfirmed` too.
 */
export class AbsenceGuard {
  /** account -> when it first read absent (recently found accounts only). */
  private readonly firstAbsent = new Map<string, number>();
  private openedAt: number | undefined;
  private why: string | undefined;
  private accounts: string[] = [];
  /** The dataset watch's mark when the guard last counted from zero. */
  private mark: string | undefined;
  /** Absences before this (ms) are accepted by an operator: real, not held. */
  private acceptedAt = 0;
  private lastCachedAbsenceAt = 0;
  /** Found lookups, and accounts newly turned absent, over about the last confirmMs (the share rule). */
  private lookups: RecentCount;
  private newAbsences: RecentCount;
  private peerHolds: readonly PeerHold[] = [];

  constructor(
    private settings: AbsenceGuardSettings,
    private readonly source: {
      /** Changes when an operator accepts deletions or the dataset is replaced; undefined before the first dataset is seen. */
      deletionsAcceptedMark(): string | undefined;
      /** When this edge process first read a dataset; undefined: not known (never held for it). */
      readingSince?(): number | undefined;
    },
    private readonly logger: Logger,
  ) {
    this.mark = source.deletionsAcceptedMark();
    this.lookups = new RecentCount(settings.confirmMs);
    this.newAbsences = new RecentCount(settings.confirmMs);
  }

  setSettings(settings: AbsenceGuardSettings): void {
    if (settings.confirmMs !== this.settings.confirmMs) {
      this.lookups = new RecentCount(settings.confirmMs);
      this.newAbsences = new RecentCount(settings.confirmMs);
    }
    this.settings = { ...settings };
  }

  /**
   * An authoritative *absent* for `accountId`: undefined when the absence stands, or the
   * *unknown* it is held as. `cached` is the stale cache's copy, at any age.
   */
  hold(accountId: string, cached: CachedAccount | undefined, now: number): Unknown | undefined {
    this.releaseIfAccepted(now);
    if (cached) this.lastCachedAbsenceAt = now;
    this.closeIfQuiet(now);
    if (this.openedAt !== undefined) {
      return { outcome: 'unknown', cause: 'mass-absence', detail: `mass-absence guard open since ${new Date(this.openedAt).toISOString()}: ${this.why}` };
    }
    const peer = this.peerHolds[0];
    if (peer) {
      return { outcome: 'unknown', cause: 'mass-absence', detail: `mass-absence guard of peer edge ${peer.edge} open since ${new Date(peer.openedAt).toISOString()}: ${peer.why}` };
    }
    const { windowMs, confirmMs, maxStaleMs } = this.settings;
    const first = this.firstAbsent.get(accountId);
    if (first !== undefined && first <= this.acceptedAt) {
      this.firstAbsent.delete(accountId);
      return undefined;
    }
    if (!cached) return this.whileStarting(now);
    if (cached.ageMs > maxStaleMs) return undefined;
    this.lookups.add(now);
    if (first === undefined || now - first > windowMs) {
      this.firstAbsent.set(accountId, now);
      this.newAbsences.add(now);
      this.forgetOlderThan(now - windowMs);
      if (this.shouldOpen(now)) return this.hold(accountId, cached, now);
      return unconfirmed(confirmMs);
    }
    if (now - first >= confirmMs) return undefined;
    return unconfirmed(confirmMs - (now - first));
  }

  /** A found account (`at`: when it was read): it no longer counts as absent. */
  found(accountId: string, at: number): void {
    this.lookups.add(at);
    if (this.firstAbsent.size > 0) this.firstAbsent.delete(accountId);
  }

  /** The peer edges whose own guard is open now (their shared hold, read every moment). */
  setPeerHolds(holds: readonly PeerHold[]): void {
    if (holds.length > 0 && this.peerHolds.length === 0) {
      this.logger.warn({ peers: holds.map((h) => h.edge), why: holds[0]!.why }, 'absences held: a peer edge\'s mass-absence guard is open');
    } else if (holds.length === 0 && this.peerHolds.length > 0) {
      this.logger.info({ peers: this.peerHolds.map((h) => h.edge) }, 'absences no longer held for peer edges: their guards closed');
    }
    this.peerHolds = holds;
  }

  /** Releases at once on an operator's word to this edge (admin API); the marker carries it to the others. */
  acceptDeletions(now: number, by: string): void {
    this.logger.warn({ audit: true, by, absences: this.firstAbsent.size, wasOpen: this.openedAt !== undefined }, 'mass-absence guard: deletions accepted by an operator');
    this.release(now);
  }

  state(now: number): AbsenceGuardState {
    this.releaseIfAccepted(now);
    this.closeIfQuiet(now);
    const absences = this.countSince(Math.max(now - this.settings.windowMs, this.acceptedAt + 1));
    return {
      open: this.openedAt !== undefined,
      absences,
      ...(this.openedAt !== undefined && { openedAt: this.openedAt, why: this.why, accounts: this.accounts }),
      ...(this.peerHolds.length > 0 && { heldBy: this.peerHolds.map((h) => h.edge) }),
    };
  }

  /**
   * An absence with no copy, on an edge that began reading the dataset a moment ago: held until
   * `confirmMs` + PEER_HOLD_ARRIVAL_MS after that, for a peer's open guard to reach it.
   */
  private whileStarting(now: number): Unknown | undefined {
    const since = this.source.readingSince?.();
    if (since === undefined) return undefined;
    const left = since + this.settings.confirmMs + PEER_HOLD_ARRIVAL_MS - now;
    if (left <= 0) return undefined;
    return { outcome: 'unknown', cause: 'absence-unconfirmed', detail: `this edge began reading the dataset ${now - since} ms ago: an account it has no copy of is confirmed absent in ${Math.round(left)} ms` };
  }

  private countSince(since: number): number {
    let count = 0;
    for (const at of this.firstAbsent.values()) if (at >= since) count++;
    return count;
  }

  private shouldOpen(now: number): boolean {
    const { minAccounts, minShare } = this.settings;
    if (this.firstAbsent.size < minAccounts) return false;
    // Absences an operator accepted are not counted again.
    const absences = this.countSince(this.acceptedAt + 1);
    if (absences < minAccounts) return false;
    const share = this.newAbsences.get(now) / Math.max(1, this.lookups.get(now));
    if (share < minShare) return false;
    this.open(now, `${absences} accounts found within max-stale turned absent within ${this.settings.windowMs} ms (${(share * 100).toFixed(1)}% of the recent lookups of recently found accounts)`, [], { absences, share });
    return true;
  }

  /**
   * A probe's answer (src/accounts/absence-probe.ts): of `checked` other accounts found within
   * max-stale, those in `absent` read absent in one proven read. A crowd among them opens the
   * guard at once, however little traffic this edge carries: otherwise, on a quiet edge, the
   * first absences are confirmed (403) before enough deleted accounts were called to trip it (the
   * randomized soak found exactly that).
   */
  sampled(absent: string[], checked: number, now: number): void {
    this.releaseIfAccepted(now);
    if (this.openedAt !== undefined || checked === 0) return;
    const share = absent.length / checked;
    if (absent.length < PROBE_MIN_ABSENT || share < this.settings.minShare) return;
    this.lastCachedAbsenceAt = now;
    this.open(now, `${absent.length} of ${checked} other accounts found within max-stale read absent in one probe (${(share * 100).toFixed(1)}%)`, absent, { probe: { absent: absent.length, checked }, share });
  }

  private open(now: number, why: string, alsoAbsent: string[], fields: Record<string, unknown>): void {
    this.openedAt = now;
    this.why = why;
    const notAccepted = [...this.firstAbsent].filter(([, at]) => at > this.acceptedAt).map(([id]) => id);
    this.accounts = [...new Set([...notAccepted, ...alsoAbsent])].slice(0, ACCOUNTS_SHOWN);
    this.logger.error(
      { alert: 'credit-edge-mass-absence', critical: true, ...fields, accounts: this.accounts },
      'MASS-ABSENCE GUARD OPEN: absent accounts are held as unknown (cache or 503), not 403; if the deletions are real: credit-edge dataset accept-deletions',
    );
  }

  private releaseIfAccepted(now: number): void {
    const mark = this.source.deletionsAcceptedMark();
    if (mark === this.mark) return;
    // The first dataset seen: nothing was accepted, there is only something to compare with.
    if (this.mark === undefined) {
      this.mark = mark;
      return;
    }
    this.logger.warn({ audit: true, wasOpen: this.openedAt !== undefined, absences: this.firstAbsent.size }, 'mass-absence guard: deletions accepted (dataset marker) or dataset replaced');
    this.release(now);
  }

  /** Absences counted so far become real at once; counting starts afresh. */
  private release(now: number): void {
    this.mark = this.source.deletionsAcceptedMark();
    this.acceptedAt = now;
    if (this.openedAt !== undefined) this.close(now, 'deletions accepted');
  }

  /** Closes by itself once no cached account has read absent for the window: the data came back. */
  private closeIfQuiet(now: number): void {
    if (this.openedAt !== undefined && now - this.lastCachedAbsenceAt >= this.settings.windowMs) {
      this.close(now, 'no cached account read absent for the window');
      this.firstAbsent.clear();
    }
  }

  private close(now: number, why: string): void {
    this.logger.warn({ why, openForMs: now - this.openedAt! }, 'mass-absence guard closed');
    this.openedAt = undefined;
    this.why = undefined;
    this.accounts = [];
  }

  private forgetOlderThan(cutoff: number): void {
    for (const [id, at] of this.firstAbsent) if (at < cutoff) this.firstAbsent.delete(id);
  }
}

/** Fewest absent accounts in one probe that make a crowd (a sample of 50: 6% of the known accounts gone). */
const PROBE_MIN_ABSENT = 3;
/** Accounts an open guard names (its alert, its shared hold). */
const ACCOUNTS_SHOWN = 20;

function unconfirmed(remainingMs: number): Unknown {
  return { outcome: 'unknown', cause: 'absence-unconfirmed', detail: `a recently found account reads absent; confirming for ${Math.max(0, Math.round(remainingMs))} ms more` };
}

/** Events over about the last periodMs, estimated from the current fixed period and the one before. */
class RecentCount {
  private period = -1;
  private current = 0;
  private previous = 0;

  constructor(private readonly periodMs: number) {}

  add(now: number): void {
    this.roll(now);
    this.current++;
  }

  get(now: number): number {
    this.roll(now);
    const intoPeriod = (now % this.periodMs) / this.periodMs;
    return this.current + this.previous * (1 - intoPeriod);
  }

  private roll(now: number): void {
    const period = Math.floor(now / this.periodMs);
    if (period === this.period) return;
    this.previous = period === this.period + 1 ? this.current : 0;
    this.current = 0;
    this.period = period;
  }
}
