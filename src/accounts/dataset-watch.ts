import type { Logger } from '../log.js';
import type { DatasetMarker } from './dataset.js';

/** Why a replica's answer cannot be trusted although the replica is in sync. */
export type DatasetProblem = 'dataset-missing' | 'dataset-changed';

/**
 * Which dataset this edge reads, and whether a replica's dataset marker (read in the same MULTI as
 * the account) is that one. A replica in sync whose dataset has no marker answers for a lost
 * dataset (master restarted empty, FLUSHALL): *dataset-missing*. A marker with another id than the
 * one this edge has been reading is *dataset-changed*, unless that dataset was declared (or
 * accepted by an operator) after this edge last saw its own: then an operator put it there after
 * the old one was gone, and the edge adopts it. The first marker seen is adopted as it is.
 */
export class DatasetWatch {
  private knownId: string | undefined;
  /** When the known dataset was last seen (this edge's clock, ms). */
  private lastSeenAt = 0;
  private knownDeletionsAccepted = 0;
  /** When this edge first read a dataset (its clock, ms). */
  private firstReadAt: number | undefined;
  /** replica -> its current problem, so each change is logged once, not once per read. */
  private readonly problems = new Map<string, DatasetProblem>();

  constructor(
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
  ) {}

  /** The id of the dataset this edge reads (undefined before the first marker). */
  get id(): string | undefined {
    return this.knownId;
  }

  /**
   * When this edge process first read a dataset (its clock, ms); undefined before the first
   * marker. A replaced dataset does not count again: the copies of the old one still serve the
   * mass-absence guard.
   */
  get readingSince(): number | undefined {
    return this.firstReadAt;
  }

  /**
   * Changes whenever an operator accepts deletions (`credit-edge dataset accept-deletions`) or the
   * dataset is replaced: the mass-absence guard releases when it differs from its mark.
   */
  get deletionsAcceptedMark(): string | undefined {
    return this.knownId === undefined ? undefined : `${this.knownId}#${this.knownDeletionsAccepted}`;
  }

  /** Judges one replica's marker; undefined when its answers may be trusted. */
  check(replica: string, marker: DatasetMarker | undefined): DatasetProblem | undefined {
    const problem = this.judge(replica, marker);
    if (problem !== this.problems.get(replica)) this.noteChange(replica, problem, marker);
    return problem;
  }

  private judge(replica: string, marker: DatasetMarker | undefined): DatasetProblem | undefined {
    if (!marker) return 'dataset-missing';
    const now = this.clock();
    if (marker.id !== this.knownId) {
      if (this.knownId !== undefined && Math.max(marker.createdAt, marker.acceptedAt) <= this.lastSeenAt) return 'dataset-changed';
      if (this.knownId !== undefined) this.logger.warn({ replica, from: this.knownId, to: marker.id }, 'dataset replaced after the old one was last seen: reading the new one');
      else this.logger.info({ replica, dataset: marker.id }, 'reading dataset');
      this.knownId = marker.id;
      this.knownDeletionsAccepted = marker.deletionsAccepted;
      this.firstReadAt ??= now;
    }
    this.lastSeenAt = now;
    if (marker.deletionsAccepted > this.knownDeletionsAccepted) this.knownDeletionsAccepted = marker.deletionsAccepted;
    return undefined;
  }

  private noteChange(replica: string, problem: DatasetProblem | undefined, marker: DatasetMarker | undefined): void {
    if (problem === undefined) {
      this.problems.delete(replica);
      this.logger.info({ replica, dataset: this.knownId }, 'replica serves the known dataset again');
      return;
    }
    this.problems.set(replica, problem);
    const detail =
      problem === 'dataset-missing'
        ? 'no dataset marker: the dataset was lost (master restarted empty, FLUSHALL) or never declared'
        : `dataset ${marker?.id} is not the one this edge reads (${this.knownId}) and was not declared after it`;
    // The operator's alarm: every uncached account answers 503 until the dataset is back.
    this.logger.error({ alert: true, critical: true, replica, problem, detail }, `replica ${replica}: ${problem}: its answers count as unknown`);
  }

  /** Replicas with a dataset problem now (admin API). */
  problemOf(replica: string): DatasetProblem | undefined {
    return this.problems.get(replica);
  }
}
