import { keyUnder, splitChanges, type ApplyResult } from '../config/reload.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { absenceGuardSettingsOf, channelAdmissionSettingsOf, identifierOf, rateAdmissionSettingsOf, localCopyTimingsOf, proxyOptionsOf, rulesOf, type RunningEdge } from './start.js';

/**
 * Applies a reloaded config to a running edge without dropping a call or a SIP transaction: the
 * decision rules, routes, identification, proxy timers, overload limit, lookup timings and the
 * replica list change in place. Keys that shape connections made at start (the SIP server, the
 * Redis password, the cache size, the admin listen address, ...) need a restart: they are named
 * in the result and logged, and the rest of the new config still applies.
 */

/** Key paths (or their prefixes) a reload applies live. */
const LIVE = [
  'log_level',
  'redis.replicas',
  'lookup',
  'cache.max_stale_ms',
  'absence_guard',
  'local_copy.max_age_ms',
  'identify',
  'routes',
  'proxy',
  'responses',
  'channel_fail_policy',
  'limits',
  'decision_header',
  'overload',
  'shutdown',
  'admin.token',
];

export function applyConfig(edge: RunningEdge, current: Config, next: Config, logger: Logger): ApplyResult {
  // The controller's section is the controller's to reload.
  const { applied, needsRestart } = splitChanges(current, next, LIVE, (key) => !keyUnder(key, ['controller']));
  const touched = (prefix: string) => applied.some((key) => keyUnder(key, [prefix]));

  if (touched('redis.replicas') || touched('lookup')) {
    const { lookup } = next;
    const { added, removed } = edge.pool.setReplicas(next.redis.replicas, {
      probeIntervalMs: lookup.probe_interval_ms,
      probeTimeoutMs: lookup.probe_timeout_ms,
      connectTimeoutMs: lookup.connect_timeout_ms,
    });
    if (added.length > 0 || removed.length > 0) logger.info({ added, removed }, 'replica list changed');
    edge.reader.setTimings({ hedgeDelayMs: lookup.hedge_delay_ms, replicaTimeoutMs: lookup.replica_timeout_ms });
  }
  edge.app.applyConfig({
    rules: rulesOf(next),
    identifier: identifierOf(next),
    maxInFlight: next.overload.max_in_flight,
    proxy: proxyOptionsOf(next),
    decisionHeader: next.decision_header,
    digestRealm: next.identify.digest_realm,
  });
  if (touched('absence_guard') || touched('cache.max_stale_ms')) edge.guard.setSettings(absenceGuardSettingsOf(next));
  if (touched('local_copy') || touched('lookup')) edge.localCopy?.setTimings(localCopyTimingsOf(next));
  if (touched('limits')) {
    edge.channels?.setSettings(channelAdmissionSettingsOf(next));
    edge.rate?.setSettings(rateAdmissionSettingsOf(next));
  }
  if (touched('log_level')) logger.level = next.log_level;
  return { applied, needsRestart };
}
