import type { AbsenceGuard } from './absence-guard.js';
import type { AccountReader } from './reader.js';
import type { StaleCache } from './stale-cache.js';

/** Accounts asked about per probe. */
const SAMPLE = 50;
/** At most one probe per this long (and one at a time). */
const MIN_INTERVAL_MS = 250;

/**
 * When an account this edge found lately reads absent, asks whether it is alone: one proven read
 * of whether 50 other accounts it found lately still exist (src/accounts/reader.ts findAbsent),
 * the answer handed to the mass-absence guard. One deletion costs one extra round trip, off the
 * call's path; a gutted dataset opens the guard at its first absence, whatever the traffic.
 */
export class AbsenceProbe {
  private inFlight = false;
  private last = 0;

  constructor(
    private readonly reader: AccountReader,
    private readonly cache: StaleCache,
    private readonly guard: AbsenceGuard,
  ) {}

  /** Starts a probe unless one ran lately; the call that asked is not kept waiting. */
  check(absentAccount: string, now: number): void {
    if (this.inFlight || now - this.last < MIN_INTERVAL_MS) return;
    const ids = this.cache.recentIds(SAMPLE, absentAccount);
    if (ids.length === 0) return;
    this.inFlight = true;
    this.last = now;
    void this.reader
      .findAbsent(ids)
      .then((r) => {
        if (r) this.guard.sampled(r.absent, r.checked, Date.now());
      })
      .finally(() => (this.inFlight = false));
  }
}
