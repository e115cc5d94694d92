import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ReplicaHealth } from '../accounts/replica.js';

/** What the state gauges read at each scrape (the replica list can change on reload). */
export interface EdgeStateSource {
  replicas(): readonly { name: string; health: ReplicaHealth; masterSilenceS: number }[];
  cacheSize(): number;
  absenceGuardOpen(): boolean;
  localCopy(): { hits: number; misses: number; size: number } | undefined;
}

const HEALTH_STATES: ReplicaHealth[] = ['in-sync', 'unverified', 'not-in-sync', 'suspect', 'unreachable'];

/**
 * The edge's Prometheus metrics, on a registry of their own (tests make one each). Names follow
 * Prometheus conventions: `credit_edge_` prefix, `_total` counters, `_seconds` durations.
 */
export class EdgeMetrics {
  readonly registry: Registry;
  /** Every decision by its outcome (`route` or the rejection verdict), SIP status and basis. */
  readonly decisions: Counter<'outcome' | 'status' | 'basis'>;
  /** Time from INVITE in to decision made (identification, lookup, table). */
  readonly decisionSeconds: Histogram;
  /**
   * PDD as the edge sees it: INVITE in to the edge's own answer out (the rejection sent, or the
   * INVITE handed to the SIP server's proxy). The downstream carrier's ringing goes from the SIP
   * server to the caller without passing through the app (neither drachtio-server nor the engine
   * report provisionals of a proxied INVITE to the app), so the carrier's share is not in it.
   */
  readonly pddSeconds: Histogram<'path'>;
  readonly invitesInFlight: Gauge;
  readonly overloadRejections: Counter;
  /** Decisions taken from the stale cache because the replicas could not answer. */
  readonly staleServes: Counter<'cause'>;
  /** Lookups whose outcome was unknown, by cause (the cache or a 503 answered). */
  readonly unknownLookups: Counter<'cause'>;
  /** Config reloads by result (`applied`, `refused`). */
  readonly reloads: Counter<'result'>;
  /** BYEs the edge sent to end calls (src/edge/call-ender.ts), by leg and outcome (ended, gone, failed). */
  readonly endingByes: Counter<'leg' | 'outcome'>;
  /** Answered calls without what a BYE needs: calls the edge could not end. */
  readonly callsNotEndable: Counter;
  /** Calls ended on the controller's order (src/edge/cut-orders.ts), by outcome. */
  readonly callsCut: Counter<'outcome'>;
  /** From the controller's decision to both parties confirming the BYE. */
  readonly cutSeconds: Histogram;
  /** Admissions of calls of limited accounts, by limit and by where they were decided (src/edge/channel-admission.ts, rate-admission.ts). */
  readonly limitAdmissions: Counter<'limit' | 'path'>;
  private readonly replicaHealth: Gauge<'replica' | 'state'>;
  private readonly replicaLag: Gauge<'replica'>;
  private readonly cacheEntries: Gauge;
  private state: EdgeStateSource | undefined;

  constructor(options: { registry?: Registry; defaultMetrics?: boolean } = {}) {
    this.registry = options.registry ?? new Registry();
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'credit_edge_' });
    const registers = [this.registry];
    this.decisions = new Counter({ name: 'credit_edge_decisions_total', help: 'Decisions on INVITEs by outcome, SIP status and basis', labelNames: ['outcome', 'status', 'basis'], registers });
    const fast = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
    this.decisionSeconds = new Histogram({ name: 'credit_edge_decision_seconds', help: 'Time from INVITE in to decision', buckets: fast, registers });
    this.pddSeconds = new Histogram({
      name: 'credit_edge_pdd_seconds',
      help: "Post-dial delay as the edge sees it: INVITE in to the edge's answer out (path=rejected: the final sent; path=proxied: handed to the proxy)",
      labelNames: ['path'],
      buckets: [...fast, 0.5, 1],
      registers,
    });
    this.invitesInFlight = new Gauge({ name: 'credit_edge_invites_in_flight', help: 'INVITEs being decided now', registers });
    this.overloadRejections = new Counter({ name: 'credit_edge_overload_rejections_total', help: 'INVITEs answered 503 because too many were in flight', registers });
    this.staleServes = new Counter({ name: 'credit_edge_stale_serves_total', help: 'Decisions taken from the stale cache, by why the replicas could not answer', labelNames: ['cause'], registers });
    this.unknownLookups = new Counter({
      name: 'credit_edge_unknown_lookups_total',
      help: 'Account lookups with no authoritative answer, by cause (dataset-missing, mass-absence, timeout, ...): the cache or a 503 answered',
      labelNames: ['cause'],
      registers,
    });
    this.reloads = new Counter({ name: 'credit_edge_config_reloads_total', help: 'Config reloads by result (applied, refused)', labelNames: ['result'], registers });
    this.endingByes = new Counter({
      name: 'credit_edge_ending_byes_total',
      help: 'BYEs the edge sent to end calls it carried, by leg (caller, callee) and outcome (ended: 2xx; gone: 481; failed: another answer or none)',
      labelNames: ['leg', 'outcome'],
      registers,
    });
    this.callsNotEndable = new Counter({ name: 'credit_edge_calls_not_endable_total', help: 'Answered calls without what a BYE needs (From, Contact, a To tag): the edge cannot end them', registers });
    this.callsCut = new Counter({
      name: 'credit_edge_calls_cut_total',
      help: "Calls ended on the controller's order (account out of credit), by outcome: ended, not-ended (a party did not confirm), not-endable (no dialog), refused (another account's order)",
      labelNames: ['outcome'],
      registers,
    });
    this.cutSeconds = new Histogram({ name: 'credit_edge_cut_seconds', help: "From the controller's decision to both parties confirming the BYE", buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30], registers });
    this.limitAdmissions = new Counter({
      name: 'credit_edge_limit_admissions_total',
      help: 'Calls of limited accounts (limit: channels, cps) by where they were decided: memory (well within the limit), master (taken atomically there), master-full (refused there), full (refused from memory: this edge alone reached max_cps), fallback (the master did not answer in time: the edge decided alone)',
      labelNames: ['limit', 'path'],
      registers,
    });

    // Read at scrape time, so replicas added or removed by a reload show up (and go) at once.
    const metrics = this;
    this.replicaHealth = new Gauge({
      name: 'credit_edge_replica_health',
      help: 'Health of each local read replica: 1 for its current state, 0 for the others (in-sync is the only authoritative one)',
      labelNames: ['replica', 'state'],
      registers,
      collect() {
        this.reset();
        for (const r of metrics.state?.replicas() ?? []) {
          for (const state of HEALTH_STATES) this.set({ replica: r.name, state }, r.health === state ? 1 : 0);
        }
      },
    });
    this.replicaLag = new Gauge({
      name: 'credit_edge_replica_lag_seconds',
      help: 'Seconds since each replica last heard from its master (master_last_io_seconds_ago; -1 when unknown)',
      labelNames: ['replica'],
      registers,
      collect() {
        this.reset();
        for (const r of metrics.state?.replicas() ?? []) this.set({ replica: r.name }, r.masterSilenceS);
      },
    });
    new Gauge({
      name: 'credit_edge_absence_guard_open',
      help: 'The mass-absence guard: 1 while absent answers are held as unknown (a lost or gutted dataset is suspected)',
      registers,
      collect() {
        this.set(metrics.state?.absenceGuardOpen() ? 1 : 0);
      },
    });
    new Counter({
      name: 'credit_edge_local_copy_lookups_total',
      help: 'Account lookups answered by the coherent local copy (hit, no round trip) or not (miss: read from a replica)',
      labelNames: ['result'],
      registers,
      collect() {
        const copy = metrics.state?.localCopy();
        this.reset();
        if (!copy) return;
        this.inc({ result: 'hit' }, copy.hits);
        this.inc({ result: 'miss' }, copy.misses);
      },
    });
    new Gauge({
      name: 'credit_edge_local_copy_entries',
      help: 'Accounts held in the coherent local copy, found or absent (some may be void until read again)',
      registers,
      collect() {
        this.set(metrics.state?.localCopy()?.size ?? 0);
      },
    });
    this.cacheEntries = new Gauge({
      name: 'credit_edge_cache_entries',
      help: 'Accounts held in the stale cache',
      registers,
      collect() {
        this.set(metrics.state?.cacheSize() ?? 0);
      },
    });
  }

  /** Points the state gauges (replica health and lag, cache size) at the running edge. */
  observe(state: EdgeStateSource): void {
    this.state = state;
  }
}
