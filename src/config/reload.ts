import { ConfigError, loadConfig } from './load.js';
import type { Config } from './schema.js';
import type { Logger } from '../log.js';

/**
 * Reloading a running process's config file (SIGHUP, or POST /reload on its admin API), for the
 * edge and the controller alike: the file is read again; a valid one is handed to the process's
 * `apply`, which changes in place what it can and names what needs a restart; an invalid one is
 * refused and logged, and the process keeps the config it had. One reload at a time, in order.
 */

export interface ApplyResult {
  /** Key paths whose new values are in force. */
  applied: string[];
  /** Key paths that changed but take effect only at the next start. */
  needsRestart: string[];
}

export type ReloadOutcome = ({ ok: true } & ApplyResult) | { ok: false; problems: string[] };

export interface ReloaderOptions {
  /** The file the process runs with; undefined: the embedded defaults (a reload changes nothing). */
  file: string | undefined;
  env: NodeJS.ProcessEnv;
  /** The config in force at start. */
  initial: Config;
  logger: Logger;
  apply(current: Config, next: Config): ApplyResult;
  /** Counts each reload by result (a metric). */
  count?(result: 'applied' | 'refused'): void;
}

export interface Reloader {
  config(): Config;
  reload(): Promise<ReloadOutcome>;
}

export function configReloader(o: ReloaderOptions): Reloader {
  let config = o.initial;
  const once = (): ReloadOutcome => {
    let next: Config;
    try {
      next = loadConfig(o.file, o.env).config;
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [(err as Error).message];
      o.count?.('refused');
      o.logger.error({ file: o.file, problems }, 'config reload refused; keeping the running config');
      return { ok: false, problems };
    }
    const result = o.apply(config, next);
    // Keys that need a restart keep their running values, so later reloads compare against those.
    config = withRunningValues(next, config, result.needsRestart);
    o.count?.('applied');
    o.logger.info({ file: o.file ?? '(defaults)', ...result }, 'config reloaded');
    if (result.needsRestart.length > 0) o.logger.warn({ keys: result.needsRestart }, 'changed keys that take effect only after a restart');
    return { ok: true, ...result };
  };
  let reloading = Promise.resolve<ReloadOutcome>({ ok: true, applied: [], needsRestart: [] });
  return {
    config: () => config,
    reload: () => (reloading = reloading.then(once, once)),
  };
}

/** Whether `key` is one of the paths (or under one of the prefixes) listed. */
export function keyUnder(key: string, paths: readonly string[]): boolean {
  return paths.some((p) => key === p || key.startsWith(`${p}.`));
}

/**
 * Splits the changed keys this process reads (`own`; a file shared by the edge and the controller
 * holds the other's keys too) into those `live` covers and those that need a restart.
 */
export function splitChanges(current: Config, next: Config, live: readonly string[], own: (key: string) => boolean = () => true): ApplyResult {
  const changed = changedKeys(current, next).filter(own);
  const applied = changed.filter((key) => keyUnder(key, live));
  return { applied, needsRestart: changed.filter((key) => !applied.includes(key)) };
}

/** POST /reload on an admin API: 200 with what was applied, 422 with the problems of a refused file. */
export async function reloadRoute(reload: () => Promise<ReloadOutcome>): Promise<{ status: number; body: ReloadOutcome }> {
  const outcome = await reload();
  return { status: outcome.ok ? 200 : 422, body: outcome };
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
