import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The credit controller's Prometheus metrics, on a registry of their own (the admin API can expose
 * it). `credit_controller_` prefix, `_total` counters, `_seconds` durations.
 */
export class ControllerMetrics {
  readonly registry: Registry;
  /** Rounds by outcome: acted, standby, no-master (fence failed), read-failed, dataset-missing. */
  readonly rounds: Counter<'outcome'>;
  readonly roundSeconds: Histogram;
  /** 1 while this controller holds the lease and acts. */
  readonly leader: Gauge;
  readonly accountsEvaluated: Gauge;
  readonly callsInProgress: Gauge;
  /** Accounts left alone for a round because something the rules need was missing or unreadable. */
  readonly unknownAccounts: Counter<'cause'>;
  readonly blocks: Counter;
  readonly unblocks: Counter;
  /** Call records removed because their edge's liveness expired. */
  readonly staleCallsRemoved: Counter;
  /** 1 while the breaker holds back blocks. */
  readonly breakerOpen: Gauge;
  readonly breakerTrips: Counter;
  /** Accounts that would have been blocked but the breaker held back (this round). */
  readonly blocksHeld: Gauge;
  /** Calls ordered ended for credit (mode cut), or that would have been (dry-run), confirmed on the master. */
  readonly cuts: Counter<'mode'>;
  /** Calls whose cut the open cut breaker held back in the last round. */
  readonly cutsHeld: Gauge;
  /** Write batches that counted as not done (not fenced, not acknowledged, aborted). */
  readonly writesNotDone: Counter<'why'>;
  /** 1 while the master has no dataset marker: the controller judges and writes nothing. */
  readonly datasetMissing: Gauge;
  readonly sweepPasses: Counter;
  readonly sweepStepSeconds: Histogram;
  readonly sweepAccounts: Counter;
  /** What the reconciliation sweep found wrong and rebuilt: call totals, runs-dry index entries. */
  readonly sweepCorrections: Counter<'what'>;

  constructor(options: { registry?: Registry; defaultMetrics?: boolean } = {}) {
    this.registry = options.registry ?? new Registry();
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'credit_controller_' });
    const registers = [this.registry];
    this.rounds = new Counter({ name: 'credit_controller_rounds_total', help: 'Controller rounds by outcome', labelNames: ['outcome'], registers });
    this.roundSeconds = new Histogram({ name: 'credit_controller_round_seconds', help: 'Time one round took', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers });
    this.leader = new Gauge({ name: 'credit_controller_leader', help: '1 while this controller holds the lease and acts', registers });
    this.accountsEvaluated = new Gauge({ name: 'credit_controller_accounts_evaluated', help: 'Accounts evaluated in the last round', registers });
    this.callsInProgress = new Gauge({ name: 'credit_controller_calls_in_progress', help: 'Call records on the master, as counted by the last sweep pass', registers });
    this.unknownAccounts = new Counter({ name: 'credit_controller_unknown_accounts_total', help: 'Accounts left alone for a round: state missing or unreadable', labelNames: ['cause'], registers });
    this.blocks = new Counter({ name: 'credit_controller_blocks_total', help: 'Credit blocks set (confirmed on the master)', registers });
    this.unblocks = new Counter({ name: 'credit_controller_unblocks_total', help: 'Credit blocks lifted (confirmed on the master)', registers });
    this.staleCallsRemoved = new Counter({ name: 'credit_controller_stale_calls_removed_total', help: 'Call records removed because their edge stopped renewing its liveness', registers });
    this.breakerOpen = new Gauge({ name: 'credit_controller_breaker_open', help: '1 while the breaker holds back mass blocking', registers });
    this.breakerTrips = new Counter({ name: 'credit_controller_breaker_trips_total', help: 'Times the breaker opened', registers });
    this.blocksHeld = new Gauge({ name: 'credit_controller_blocks_held', help: 'Blocks held back by the open breaker in the last round', registers });
    this.cuts = new Counter({ name: 'credit_controller_cuts_total', help: 'Calls ordered ended because their account ran out of credit (mode cut), or that would have been (dry-run)', labelNames: ['mode'], registers });
    this.cutsHeld = new Gauge({ name: 'credit_controller_cuts_held', help: 'Calls whose cut the open breaker held back in the last round', registers });
    this.datasetMissing = new Gauge({ name: 'credit_controller_dataset_missing', help: '1 while the master has no dataset marker (nothing judged, nothing written)', registers });
    this.sweepStepSeconds = new Histogram({ name: 'credit_controller_sweep_step_seconds', help: 'Time one slice of the reconciliation sweep took (after a round)', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers });
    this.sweepPasses = new Counter({ name: 'credit_controller_sweep_passes_total', help: 'Reconciliation sweeps completed over every account', registers });
    this.sweepAccounts = new Counter({ name: 'credit_controller_sweep_accounts_total', help: 'Accounts visited by the reconciliation sweep', registers });
    this.sweepCorrections = new Counter({ name: 'credit_controller_sweep_corrections_total', help: 'Call totals or runs-dry index entries the sweep found wrong and rebuilt', labelNames: ['what'], registers });
    this.writesNotDone = new Counter({ name: 'credit_controller_writes_not_done_total', help: 'Write batches counted as not done', labelNames: ['why'], registers });
  }
}
