import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { absenceGuardSettingsOf, identifierOf, localCopyTimingsOf, proxyOptionsOf, rulesOf, type RunningEdge } from './start.js';

/**
 * Applies a reloaded config to a running edge without dropping a call or a SIP transaction: the
 * decision rules, routes, identification, proxy timers, overload limit, lookup timings and the
 * replica list change in place. Keys that shape connections made at start (the SIP server, the
 * Redis password, the cache size, the admin listen address, ...) need a restart: they are named
 * in the result and logged, and the rest of the new config still applies.
 */

export interface ApplyResult {
  /** Key paths whose new values are in force. */
  applied: string[];
  /** Key paths that changed but take effect only at the next start. */
  needsRestart: string[];
}

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
  'decision_header',
  'overload',
  'admin.token',
];

export function applyConfig(edge: RunningEdge, current: Config, next: Config, logger: Logger): ApplyResult {
  const changed = changedKeys(current, next);
  const applied = changed.filter((key) => LIVE.some((live) => key === live || key.startsWith(`${live}.`)));
  const needsRestart = changed.filter((key) => !applied.includes(key));
  const touched = (prefix: string) => applied.some((key) => key === prefix || key.startsWith(`${prefix}.`));

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
  if (touched('log_level')) logger.level = next.log_level;
  return { applied, needsRestart };
}

/** `next` with the running values kept for `keys` (those that need a restart to change). */
export function withRunningValues(next: Config, running: Config, keys: string[]): Config {
  const result = structuredClone(next) as Record<string, unknown>;
  const from = running as Record<string, unknown>;
  for (const key of keys) {
    const [top, sub] = key.split('.') as [string, string | undefined];
    if (sub === undefined) result[top] = structuredClone(from[top]);
    else (result[top] as Record<string, unknown>)[sub] = structuredClone((from[top] as Record<string, unknown>)[sub]);
  }
  return result as Config;
}

/** The key paths (two levels deep, e.g. `lookup.hedge_delay_ms`) whose values differ. */
export function changedKeys(a: Config, b: Config): string[] {
  const keys = new Set<string>();
  const A = a as Record<string, unknown>;
  const B = b as Record<string, unknown>;
  for (const top of new Set([...Object.keys(A), ...Object.keys(B)])) {
    const x = A[top];
    const y = B[top];
    if (same(x, y)) continue;
    if (isSection(x) && isSection(y) && top !== 'routes' && top !== 'responses') {
      for (const sub of new Set([...Object.keys(x), ...Object.keys(y)])) if (!same(x[sub], y[sub])) keys.add(`${top}.${sub}`);
    } else {
      keys.add(top);
    }
  }
  return [...keys];
}

function isSection(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function same(x: unknown, y: unknown): boolean {
  return JSON.stringify(x) === JSON.stringify(y);
}
