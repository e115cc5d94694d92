import { setTimeout as sleep } from 'node:timers/promises';
import crypto from 'node:crypto';
import Srf from 'drachtio-srf';
import { AbsenceProbe } from '../accounts/absence-probe.js';
import { AbsenceGuard, type AbsenceGuardSettings } from '../accounts/absence-guard.js';
import { SharedAbsenceHold } from '../accounts/absence-hold.js';
import { DatasetWatch } from '../accounts/dataset-watch.js';
import { LocalCopy, type LocalCopyOptions } from '../accounts/local-copy.js';
import { LocalCopyWarmer } from '../accounts/local-copy-warmer.js';
import { ReplicaPool } from '../accounts/replica-pool.js';
import { AccountReader } from '../accounts/reader.js';
import { StaleCache } from '../accounts/stale-cache.js';
import { EdgeMetrics } from '../admin/metrics.js';
import { rejectionsOf, type Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Rules } from '../policy/rules.js';
import { EdgeApp, type EdgeOptions } from './app.js';
import { CallRecorder } from './call-records.js';
import { ChannelAdmission, type ChannelAdmissionSettings } from './channel-admission.js';
import { RateAdmission, type RateAdmissionSettings } from './rate-admission.js';
import { CutOrderRunner } from './cut-orders.js';
import { LocalCallsInProgress } from './calls-in-progress.js';
import { Identifier } from './identify.js';
import { splitHostPort } from '../config/host-port.js';
import { sentinelMasterClient } from '../redis/master-client.js';

export interface RunningEdge {
  app: EdgeApp;
  srf: Srf;
  pool: ReplicaPool;
  reader: AccountReader;
  cache: StaleCache;
  /** The coherent local copy; undefined when local_copy.enabled is false. */
  localCopy?: LocalCopy;
  dataset: DatasetWatch;
  guard: AbsenceGuard;
  calls: LocalCallsInProgress;
  /** Reads every account ahead of calls; undefined without a local copy or with local_copy.warm false. */
  warmer?: LocalCopyWarmer;
  /** Calls in progress recorded on the master; undefined when calls_in_progress.enabled is false. */
  records?: CallRecorder;
  /** Carries out the controller's orders to end calls (with records only). */
  cuts?: CutOrderRunner;
  /** The channel limit across edges (with records only). */
  channels?: ChannelAdmission;
  /** The calls-per-second limit across edges (with records only). */
  rate?: RateAdmission;
  metrics: EdgeMetrics;
  /** Connected to the SIP server, and a replica in sync or a warm cache to decide with; not draining. */
  ready(): boolean;
  /** Resolves once connected to the SIP server. */
  connected: Promise<void>;
  /**
   * Stops taking calls (the shutting-down 503, /readyz 503) and resolves once the calls in
   * progress have ended, or after `drainMs` with how many were left (shutdown.drain_ms).
   */
  drain(drainMs: number): Promise<{ left: number }>;
  stop(): Promise<void>;
}

const DRAIN_POLL_MS = 200;
const DRAIN_LOG_EVERY_MS = 30_000;

export function rulesOf(config: Config): Rules {
  return {
    rejections: rejectionsOf(config),
    maxStaleMs: config.cache.max_stale_ms,
    channelFailPolicy: config.channel_fail_policy,
    routes: config.routes,
  };
}

export function absenceGuardSettingsOf(config: Config): AbsenceGuardSettings {
  const g = config.absence_guard;
  return { windowMs: g.window_ms, minAccounts: g.min_accounts, minShare: g.min_share, confirmMs: g.confirm_ms, maxStaleMs: config.cache.max_stale_ms };
}

export function channelAdmissionSettingsOf(config: Config): ChannelAdmissionSettings {
  const l = config.limits;
  return { memoryShare: l.memory_share, freshMs: l.fresh_ms, masterTimeoutMs: l.master_timeout_ms };
}

export function rateAdmissionSettingsOf(config: Config): RateAdmissionSettings {
  const l = config.limits;
  return { memoryShare: l.memory_share, masterTimeoutMs: l.master_timeout_ms, ...(l.default_max_cps !== undefined && { defaultMaxCps: l.default_max_cps }) };
}

export function localCopyTimingsOf(config: Config): Pick<LocalCopyOptions, 'maxAgeMs' | 'proofMaxAgeMs'> {
  // A probe is due every interval and may take its timeout: older than both, the proof is lapsed.
  return { maxAgeMs: config.local_copy.max_age_ms, proofMaxAgeMs: config.lookup.probe_interval_ms + config.lookup.probe_timeout_ms };
}

export function identifierOf(config: Config): Identifier {
  const { identify } = config;
  return new Identifier({ order: identify.order, header: identify.header, trustedSources: identify.trusted_sources, trunks: identify.trunks });
}

export function proxyOptionsOf(config: Config): EdgeOptions['proxy'] {
  return {
    provisionalTimeout: `${config.proxy.provisional_timeout_s}s`,
    ...(config.proxy.final_timeout_s !== undefined && { finalTimeout: `${config.proxy.final_timeout_s}s` }),
  };
}

/**
 * Starts the edge from a validated config: the replica pool, the stale cache, and a drachtio-srf
 * app connected to the SIP server (embedded engine or drachtio-server), reconnecting with
 * backoff whenever the connection drops.
 */
export function startEdge(config: Config, logger: Logger, options: { metrics?: EdgeMetrics } = {}): RunningEdge {
  const { lookup } = config;
  const localCopy = config.local_copy.enabled ? new LocalCopy({ maxEntries: config.cache.max_entries, ...localCopyTimingsOf(config) }) : undefined;
  const pool = new ReplicaPool(config.redis.replicas, {
    probeIntervalMs: lookup.probe_interval_ms,
    probeTimeoutMs: lookup.probe_timeout_ms,
    connectTimeoutMs: lookup.connect_timeout_ms,
    ...(config.redis.password !== undefined && { password: config.redis.password }),
    logger,
    ...(localCopy && { onInvalidate: (replica, what) => localCopy.invalidate(replica, what) }),
  });
  const dataset = new DatasetWatch(logger);
  const reader = new AccountReader(pool, { hedgeDelayMs: lookup.hedge_delay_ms, replicaTimeoutMs: lookup.replica_timeout_ms }, dataset, localCopy);
  const cache = new StaleCache({ maxEntries: config.cache.max_entries });
  const warmer = localCopy && config.local_copy.warm ? new LocalCopyWarmer(pool, localCopy, cache, dataset, { maxEntries: config.cache.max_entries, checkEveryMs: 1000, logger }) : undefined;
  warmer?.start();
  const guard = new AbsenceGuard(absenceGuardSettingsOf(config), { deletionsAcceptedMark: () => dataset.deletionsAcceptedMark, readingSince: () => dataset.readingSince }, logger);
  const probe = new AbsenceProbe(reader, cache, guard);
  // A peer's open guard holds absences here too, and this edge's there (written on the master,
  // which only an edge set up with Sentinel reaches: calls_in_progress.enabled).
  const cip = config.calls_in_progress;
  const sharedHold = new SharedAbsenceHold({
    node: config.node_id,
    guard,
    dataset,
    pool,
    reader,
    ...(cip.enabled && {
      master: sentinelMasterClient({
        masterName: config.redis.sentinel.master_name,
        sentinels: config.redis.sentinel.addresses.map(splitHostPort),
        ...(config.redis.password !== undefined && { password: config.redis.password }),
        timeoutMs: cip.master_timeout_ms,
        connectionName: `credit-edge-absence-hold-${config.node_id}`,
      }),
    }),
    logger: logger.child({ part: 'absence-hold' }),
  });
  sharedHold.start();
  const calls = new LocalCallsInProgress();
  const metrics = options.metrics ?? new EdgeMetrics({ defaultMetrics: true });
  metrics.observe({ replicas: () => pool.replicas, cacheSize: () => cache.size, absenceGuardOpen: () => guard.state(Date.now()).open, localCopy: () => localCopy });
  // Calls in progress on the master (through Sentinel); never on the call routing path.
  const records = cip.enabled
    ? new CallRecorder({
        node: config.node_id,
        masterName: config.redis.sentinel.master_name,
        sentinels: config.redis.sentinel.addresses.map(splitHostPort),
        ...(config.redis.password !== undefined && { password: config.redis.password }),
        queueMax: cip.queue_max,
        livenessTtlMs: cip.liveness_ttl_ms,
        masterTimeoutMs: cip.master_timeout_ms,
        logger,
        registry: metrics.registry,
      })
    : undefined;
  const { identify } = config;
  const channels = records ? new ChannelAdmission(channelAdmissionSettingsOf(config), { records, calls, metrics, logger: logger.child({ part: 'channels' }) }) : undefined;
  const rate = records ? new RateAdmission(rateAdmissionSettingsOf(config), { master: records.master, sharingEdges: () => records.sharingEdges(), metrics, logger: logger.child({ part: 'call-rate' }) }) : undefined;

  const srf = new Srf();
  const app = new EdgeApp(srf, {
    rules: rulesOf(config),
    identifier: identifierOf(config),
    reader,
    cache,
    guard,
    probe,
    calls,
    ...(records && { records }),
    ...(channels && { channels }),
    ...(rate && { rate }),
    maxInFlight: config.overload.max_in_flight,
    // A fresh secret per process: a challenge is answered to the edge that sent it.
    digest: { realm: identify.digest_realm, nonceSecret: crypto.randomBytes(32).toString('hex'), maxNonceAgeMs: 300_000 },
    proxy: proxyOptionsOf(config),
    decisionHeader: config.decision_header,
    nodeId: config.node_id,
    bypassGating: config.bypass_gating,
    logger,
    metrics,
  });

  // The controller's orders to end calls of accounts out of credit (controller.cut_calls).
  const cuts = records
    ? new CutOrderRunner({
        source: records,
        endCall: (callId, reason) => app.endCall(callId, reason),
        reason: () => app.cutReason,
        pollMs: cip.cut_poll_ms,
        logger: logger.child({ part: 'cut-orders' }),
        metrics,
      })
    : undefined;

  let isConnected = false;
  const connected = new Promise<void>((resolve) => {
    srf.on('connect', (err: Error | null, hostport: string) => {
      if (err) return logger.error({ err }, 'SIP server refused the app');
      isConnected = true;
      logger.info({ hostport }, 'connected to SIP server');
      resolve();
    });
  });
  const lost = (detail: string) => {
    if (isConnected) logger.warn({ detail, callsEnded: app.sipServerLost() }, 'SIP server connection lost; reconnecting; the calls in progress are ended in the records (their ends can no longer be seen)');
    isConnected = false;
  };
  srf.on('error', (err: Error) => lost(err.message));
  (srf as unknown as NodeJS.EventEmitter).on('close', () => lost('closed'));
  const { server } = config.sip;
  srf.connect({ host: server.host, port: server.port, secret: server.secret, reconnect: { retryMaxDelay: 2000 } } as Srf.SrfConfig);

  return {
    app,
    srf,
    pool,
    reader,
    cache,
    ...(localCopy && { localCopy }),
    ...(warmer && { warmer }),
    dataset,
    guard,
    calls,
    ...(records && { records }),
    ...(cuts && { cuts }),
    ...(channels && { channels }),
    ...(rate && { rate }),
    metrics,
    connected,
    ready: () => !app.isDraining && isConnected && (pool.replicas.some((r) => r.inSync) || cache.size > 0),
    async drain(drainMs) {
      app.drain();
      const deadline = Date.now() + drainMs;
      logger.warn({ drainMs, callsInProgress: app.callsInProgress }, 'draining: new calls refused (503), the calls in progress carried to their end');
      let logged = Date.now();
      while (app.callsInProgress > 0 && Date.now() < deadline) {
        await sleep(DRAIN_POLL_MS);
        if (Date.now() - logged >= DRAIN_LOG_EVERY_MS) {
          logged = Date.now();
          logger.info({ callsInProgress: app.callsInProgress, msLeft: deadline - Date.now() }, 'draining');
        }
      }
      const left = app.callsInProgress;
      if (left > 0) logger.warn({ left }, 'drain time over: stopping with calls in progress (charged until their records are removed; no edge can end them any more)');
      else logger.info('drained: no call in progress');
      return { left };
    },
    async stop() {
      try {
        srf.disconnect();
      } catch {
        // never connected
      }
      warmer?.stop();
      cuts?.stop();
      rate?.stop();
      await sharedHold.stop();
      await records?.stop();
      await pool.close();
    },
  };
}
