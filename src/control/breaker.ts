/**
 * The mass-blocking breaker (the incident's rule 4): when more accounts would be newly blocked
 * within a window than an operator would believe, the likelier story is a fault of ours (bad
 * reads, a broken feed), not a crowd of customers running dry at once. Then block none of them,
 * raise the alarm, and wait for the condition to clear or an operator to confirm.
 */

export interface BreakerSettings {
  /** Most new blocks within the window. */
  maxBlocks: number;
  /** Most new blocks within the window as a share of the accounts evaluated in the round. */
  maxShare: number;
  /** The share rule applies only from this many accounts evaluated (a share of 3 means little). */
  minAccountsForShare: number;
  windowMs: number;
}

export interface BreakerVerdict {
  /** True: block none of the candidates this round. */
  open: boolean;
  /** Why, in operators' words, when open. */
  why?: string;
}

/** Pure: would blocking `candidates` more accounts now, after `recent` in the window, trip the breaker? */
export function breakerVerdict(input: { recent: number; candidates: number; evaluated: number; settings: BreakerSettings }): BreakerVerdict {
  const { recent, candidates, evaluated, settings } = input;
  if (candidates === 0) return { open: false };
  const total = recent + candidates;
  if (total > settings.maxBlocks) {
    return { open: true, why: `${total} accounts would be newly blocked within ${settings.windowMs} ms (limit ${settings.maxBlocks})` };
  }
  if (evaluated >= settings.minAccountsForShare && total / evaluated > settings.maxShare) {
    return { open: true, why: `${total} of ${evaluated} accounts would be newly blocked within ${settings.windowMs} ms (limit ${Math.round(settings.maxShare * 100)}%)` };
  }
  return { open: false };
}

/** The blocks made in the sliding window, and whether the breaker is open now. */
export class Breaker {
  private blocks: number[] = [];
  open = false;
  openSince: number | undefined;
  why: string | undefined;

  constructor(readonly settings: BreakerSettings) {}

  recent(now: number): number {
    this.blocks = this.blocks.filter((at) => now - at < this.settings.windowMs);
    return this.blocks.length;
  }

  /** Judges this round's candidates; returns the verdict and whether the breaker just changed state. */
  judge(candidates: number, evaluated: number, now: number): BreakerVerdict & { changed: boolean } {
    const verdict = breakerVerdict({ recent: this.recent(now), candidates, evaluated, settings: this.settings });
    const changed = verdict.open !== this.open;
    this.open = verdict.open;
    this.why = verdict.why;
    if (changed) this.openSince = verdict.open ? now : undefined;
    return { ...verdict, changed };
  }

  /** Counts blocks actually made (confirmed on the master). */
  record(count: number, now: number): void {
    for (let i = 0; i < count; i++) this.blocks.push(now);
  }

  /** An operator confirmed the blocks: they go through, and the breaker closes. */
  confirmed(): void {
    this.open = false;
    this.openSince = undefined;
    this.why = undefined;
  }
}
