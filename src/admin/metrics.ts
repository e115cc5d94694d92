import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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
  readonly invitesInFlight: Gauge;
  readonly overloadRejections: Counter;
  /** Decisions taken from the stale cache because the replicas could not answer. */
  readonly staleServes: Counter<'cause'>;

  constructor(options: { registry?: Registry; defaultMetrics?: boolean } = {}) {
    this.registry = options.registry ?? new Registry();
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'credit_edge_' });
    const registers = [this.registry];
    this.decisions = new Counter({ name: 'credit_edge_decisions_total', help: 'Decisions on INVITEs by outcome, SIP status and basis', labelNames: ['outcome', 'status', 'basis'], registers });
    this.decisionSeconds = new Histogram({
      name: 'credit_edge_decision_seconds',
      help: 'Time from INVITE in to decision',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
      registers,
    });
    this.invitesInFlight = new Gauge({ name: 'credit_edge_invites_in_flight', help: 'INVITEs being decided now', registers });
    this.overloadRejections = new Counter({ name: 'credit_edge_overload_rejections_total', help: 'INVITEs answered 503 because too many were in flight', registers });
    this.staleServes = new Counter({ name: 'credit_edge_stale_serves_total', help: 'Decisions taken from the stale cache, by why the replicas could not answer', labelNames: ['cause'], registers });
  }
}
