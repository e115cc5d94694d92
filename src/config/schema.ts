import { z } from 'zod';
import { DEFAULT_REJECTIONS, type Rejection, type Verdict } from '../policy/rules.js';
import { splitHostPort } from './host-port.js';
import { WELL_KNOWN_SIP_SECRET } from './production.js';

/**
 * The operator's config file, as a schema: every key, its type, its default. Unknown keys are
 * errors (a typo must not silently fall back to a default). `config/credit-edge.example.yaml`
 * documents each key; keep the two in step.
 */

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port');
const port = z.number().int().min(0).max(65535);
const positiveMs = z.number().int().positive();
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected a name of letters, digits, . _ -');
const sipUri = z.string().regex(/^sips?:[^\s]+$/, 'expected a SIP URI such as sip:carrier.example:5060');
const cidr = z.string().regex(/^[0-9a-fA-F.:]+(\/\d{1,3})?$/, 'expected an IP address or CIDR such as 192.0.2.0/24');

const replica = z.strictObject({ name: name.optional(), host: z.string().min(1), port });

const rejection = z.strictObject({
  status: z.number().int().min(400).max(699),
  phrase: z.string().min(1).regex(/^[^\r\n]+$/, 'one line of text'),
  q850: z.number().int().min(1).max(127),
  retry_after: z.number().int().min(0).optional(),
});

const verdicts = Object.keys(DEFAULT_REJECTIONS) as [Verdict, ...Verdict[]];

export const configSchema = z.strictObject({
  /** Names this edge in logs, metrics and calls-in-progress records. */
  node_id: name.default('edge-1'),
  log_level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
  /** Log lines are gathered and written together at most this long after the last write (ms); 0: each line at once. */
  log_flush_ms: z.number().int().min(0).max(10_000).default(100),

  /** The SIP server the app drives: the embedded engine or a drachtio-server. */
  sip: z
    .strictObject({
      server: z.strictObject({ host: z.string().default('127.0.0.1'), port: port.default(9022), secret: z.string().min(1).default(WELL_KNOWN_SIP_SECRET) }).prefault({}),
      /** Starts the embedded engine in-process (development); off when a drachtio-server runs. */
      embedded_engine: z
        .strictObject({ enabled: z.boolean().default(true), listen: hostPort.default('127.0.0.1:5060') })
        .prefault({}),
    })
    .prefault({}),

  redis: z
    .strictObject({
      password: z.string().optional(),
      /** The local read replicas the edge reads account state from. */
      replicas: z.array(replica).min(1).default([{ host: '127.0.0.1', port: 6380 }]),
      sentinel: z
        .strictObject({ master_name: name.default('credit-edge'), addresses: z.array(hostPort).min(1).default(['127.0.0.1:26379']) })
        .prefault({}),
    })
    .prefault({}),

  lookup: z
    .strictObject({
      hedge_delay_ms: positiveMs.default(3),
      replica_timeout_ms: positiveMs.default(10),
      probe_interval_ms: positiveMs.default(250),
      probe_timeout_ms: positiveMs.default(250),
      connect_timeout_ms: positiveMs.default(1000),
    })
    .prefault({}),

  cache: z.strictObject({ max_entries: z.number().int().positive().default(100_000), max_stale_ms: positiveMs.default(300_000) }).prefault({}),

  /** The coherent local copy of accounts read (src/accounts/local-copy.ts), kept right by CLIENT TRACKING on the replicas. */
  local_copy: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** A copy older than this is never used: a safety net; invalidations keep it right. */
      max_age_ms: positiveMs.default(300_000),
      /** Read every account into the copy ahead of the calls (again every half max_age_ms, and after a resync or reconnect). */
      warm: z.boolean().default(true),
    })
    .prefault({}),

  /** The mass-absence guard (src/accounts/absence-guard.ts): a crowd of known accounts turning absent is a lost dataset, not news. */
  absence_guard: z
    .strictObject({
      window_ms: positiveMs.default(60_000),
      min_accounts: z.number().int().positive().default(10),
      min_share: z.number().min(0).max(1).default(0.05),
      confirm_ms: positiveMs.default(1000),
    })
    .prefault({}),

  identify: z
    .strictObject({
      order: z.array(z.enum(['source', 'digest', 'header'])).min(1).default(['source', 'header']),
      header: z.string().regex(/^[A-Za-z0-9-]+$/).default('X-Account-Id'),
      /** The header is believed only from these addresses. */
      trusted_sources: z.array(cidr).default(['127.0.0.1/32']),
      trunks: z.array(z.strictObject({ cidr, account: name })).default([]),
      digest_realm: z.string().min(1).default('credit-edge'),
    })
    .prefault({}),

  /** Route group -> targets tried in order (sequential failover). */
  routes: z.record(name, z.array(sipUri).min(1)).default({}),

  proxy: z
    .strictObject({
      /** Try the next target when one has not answered even a provisional within this time. */
      provisional_timeout_s: z.number().int().positive().default(5),
      /** Give up on a target that has not answered finally within this time (none by default). */
      final_timeout_s: z.number().int().positive().optional(),
    })
    .prefault({}),

  responses: z.partialRecord(z.enum(verdicts), rejection).default({}),
  channel_fail_policy: z.enum(['last-seen', 'allow', 'reject']).default('last-seen'),
  /** Limits that hold across edges (src/edge/channel-admission.ts, src/edge/rate-admission.ts); shared through the master, with calls_in_progress only. */
  limits: z
    .strictObject({
      /** A call is admitted from memory while its account's count, with it, stays within this part of the edge's share of the limit (limit / the edges present); past it, it is admitted on the master. */
      memory_share: z.number().min(0).max(1).default(0.5),
      /** A channel is taken from memory only when the call is decided within this many ms of reaching the edge: a slow decision read an older count. */
      fresh_ms: positiveMs.default(5),
      /** The master's answer is awaited this long; then the edge decides alone (channels: channel_fail_policy; calls per second: admitted). */
      master_timeout_ms: positiveMs.default(100),
      /** Calls per second of an account that has no max_cps of its own; absent: no limit. */
      default_max_cps: z.number().int().nonnegative().optional(),
    })
    .prefault({}),
  /** Adds X-Credit-Decision to responses, for operators' debugging. */
  decision_header: z.boolean().default(false),
  /**
   * Benchmark only: route every identified call to the default route group without any lookup or
   * decision (gating off), so `npm run bench` can measure the gate's cost. Never in production.
   */
  bypass_gating: z.boolean().default(false),

  overload: z.strictObject({ max_in_flight: z.number().int().positive().default(500) }).prefault({}),

  /**
   * On SIGTERM the edge drains: new INVITEs get the `shutting-down` 503 (OPTIONS too), and the
   * calls in progress are still carried, recorded and cut for credit, until they have ended or
   * `drain_ms` has passed (0: stop at once). A call still up when the edge stops is charged until
   * its record is removed (by the restarted edge, or the controller for a dead one), and no edge
   * can end it any more: its dialog lived in this process.
   */
  shutdown: z.strictObject({ drain_ms: z.number().int().min(0).default(600_000) }).prefault({}),

  /** Calls in progress as the edge records them on the master (through Sentinel). */
  calls_in_progress: z
    .strictObject({
      /** Record calls on the master; off only for setups without Sentinel (some tests, the benchmark). */
      enabled: z.boolean().default(true),
      /** Call events kept while the master is unreachable; beyond this they are counted and logged. */
      queue_max: z.number().int().positive().default(10_000),
      /** TTL of `edge:{node}:alive`; the edge renews it every third of this. */
      liveness_ttl_ms: positiveMs.default(15_000),
      /** A master command slower than this fails (the event stays queued). */
      master_timeout_ms: positiveMs.default(500),
      /** How often the edge reads the controller's orders to end calls it carries (controller.cut_calls). */
      cut_poll_ms: positiveMs.default(500),
    })
    .prefault({}),

  /** The credit controller (`credit-edge controller`). */
  controller: z
    .strictObject({
      /** Names this controller in the lease, the audit and the logs. */
      name: name.default('controller-1'),
      /** The controller's own admin API (/healthz, /readyz, /metrics, POST /confirm-blocks); token: admin.token. */
      admin_listen: hostPort.default('127.0.0.1:8081'),
      round_ms: positiveMs.default(1000),
      /** Lease on the master; a standby takes over once it expires. */
      lease_ms: positiveMs.default(5000),
      master_timeout_ms: positiveMs.default(500),
      /** Replicas that must acknowledge a write batch (WAIT) for it to count as done; 0 = do not wait. */
      wait_replicas: z.number().int().min(0).default(1),
      wait_timeout_ms: positiveMs.default(200),
      /** Calls of an edge whose liveness has lapsed are removed after this grace. */
      dead_edge_grace_ms: z.number().int().min(0).default(5000),
      /** Newest audit entries kept (approximate). */
      audit_max_len: z.number().int().positive().default(100_000),
      /** The reconciliation sweep visits every account once per this period, a slice each round. */
      sweep_ms: positiveMs.default(60_000),
      /** Every this many sweeps, totals are re-summed from every record (otherwise only where the counts disagree). */
      sweep_full_every: z.number().int().positive().default(10),
      /** Most accounts read and judged per round (to block, to lift, in doubt); the rest wait a round. */
      max_accounts_per_round: z.number().int().positive().default(2000),
      /** Most call records of dead edges removed per round. */
      max_stale_calls_per_round: z.number().int().positive().default(2000),
      /**
       * End the calls of an account whose credit has run out (a BYE to each party, from the edge
       * that carries the call), judged by the rules that block it.
       */
      cut_calls: z
        .strictObject({
          enabled: z.boolean().default(true),
          /** Decide and audit what would be cut (`cut-dry-run`), end nothing. */
          dry_run: z.boolean().default(false),
          /** How long after the projected balance reached zero a call is cut. */
          grace_ms: z.number().int().min(0).default(250),
        })
        .prefault({}),
      breaker: z
        .strictObject({
          max_blocks: z.number().int().min(0).default(20),
          max_share: z.number().min(0).max(1).default(0.2),
          min_accounts: z.number().int().positive().default(20),
          window_ms: positiveMs.default(60_000),
        })
        .prefault({}),
    })
    .prefault({}),

  /** The admin HTTP API (health, metrics, accounts, reload). */
  admin: z
    .strictObject({
      listen: hostPort.default('127.0.0.1:8080'),
      /** Bearer token; required when listening beyond loopback. Best set from the environment. */
      token: z.string().min(16, 'at least 16 characters').optional(),
    })
    .superRefine((admin, ctx) => {
      if (!isLoopback(admin.listen) && admin.token === undefined) {
        ctx.addIssue({ code: 'custom', path: ['listen'], message: `${admin.listen} is beyond loopback: set admin.token (e.g. CREDIT_EDGE_ADMIN__TOKEN)` });
      }
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;

/** True for a host:port only this machine can reach (127.0.0.0/8, localhost, ::1). */
export function isLoopback(hostPort: string): boolean {
  const host = splitHostPort(hostPort).host.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The rejections in force: the defaults, with the operator's per-verdict overrides. */
export function rejectionsOf(config: Config): Record<Verdict, Rejection> {
  const rejections = { ...DEFAULT_REJECTIONS };
  for (const [verdict, r] of Object.entries(config.responses) as [Verdict, z.infer<typeof rejection>][]) {
    rejections[verdict] = { status: r.status, phrase: r.phrase, q850: r.q850, ...(r.retry_after !== undefined && { retryAfter: r.retry_after }) };
  }
  return rejections;
}
