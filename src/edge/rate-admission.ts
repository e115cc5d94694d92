import type { Redis } from 'ioredis';
import type { EdgeMetrics } from '../admin/metrics.js';
import { RATE_WINDOW_MS, RecentAdmissions, TAKE_RATE_LUA } from '../calls/call-rate.js';
import type { Logger } from '../log.js';
import { rejection, type Decision, type RouteDecision } from '../policy/decide.js';
import type { Rules } from '../policy/rules.js';
import { rateKey } from '../redis/keys.js';
import { answerWithin } from '../redis/deadline.js';
import type { InviteUnderWay } from './channel-admission.js';

export interface RateAdmissionSettings {
  /** The calls-per-second limit of an account that has no `max_cps` of its own; undefined: none. */
  defaultMaxCps?: number;
  /** The part of its share of an account's limit (max_cps / edges present) an edge admits from memory. */
  memoryShare: number;
  /** How long the master's answer is awaited before the call is admitted all the same. */
  masterTimeoutMs: number;
}

/**
 * Where a call of a rate-limited account is admitted (pure): from memory while this edge's own
 * admissions of the account in the last second, with this call, stay within `memoryShare` of its
 * share of the limit, and the master's last word on the account within that second (`seenOnMaster`,
 * all edges' admissions) left as much room; refused at once when this edge's own admissions alone
 * reach the limit; otherwise on the master. Bounding memory admissions by each edge's own count
 * keeps all of them together within the limit, however late each learns of the others'; the
 * master's last word sends a busy account's calls to the master before its window fills. With no
 * word from the master in the last second (the account's first call here in a while), the other
 * edges may have filled the window meanwhile: on the master. `edges` undefined: on the master.
 */
export function ratePath(maxCps: number, own: number, seenOnMaster: number | undefined, edges: number | undefined, memoryShare: number): 'memory' | 'master' | 'full' {
  if (own >= maxCps) return 'full';
  const room = maxCps * memoryShare;
  return edges !== undefined && seenOnMaster !== undefined && (own + 1) * edges <= room && seenOnMaster + 1 <= room ? 'memory' : 'master';
}

interface RateScripts {
  takeRate(key: string, callId: string, maxCps: number, mode: string): Promise<[number, number]>;
}

/**
 * The per-account calls-per-second limit across edges (issue 22), the same shape as the channel
 * limit: well below it, admitted from memory and the admission written on the master at once
 * (the other edges' checks count it); near it, one script on the master counts the last second's
 * admissions and adds this one only if under the limit, before the call is proxied. When the
 * master does not answer in time the call is admitted (a rate limit is no reason to refuse a call
 * on a guess) and `path="fallback"` counts it.
 */
export class RateAdmission {
  private readonly recent = new RecentAdmissions();
  /** The master's last count of each account's window (all edges), and when (performance.now()). */
  private readonly seenOnMaster = new Map<string, { count: number; at: number }>();
  private readonly pruner: NodeJS.Timeout;

  constructor(
    private settings: RateAdmissionSettings,
    private readonly o: { master: Redis; sharingEdges: () => number | undefined; metrics: EdgeMetrics; logger: Logger },
  ) {
    o.master.defineCommand('takeRate', { numberOfKeys: 1, lua: TAKE_RATE_LUA });
    this.pruner = setInterval(() => {
      const now = performance.now();
      this.recent.prune(now);
      for (const [account, seen] of this.seenOnMaster) if (seen.at <= now - RATE_WINDOW_MS) this.seenOnMaster.delete(account);
    }, 10_000);
    this.pruner.unref();
  }

  setSettings(settings: RateAdmissionSettings): void {
    this.settings = { ...settings };
  }

  /** The account's limit, from the account or the deployment's default; undefined: not limited. */
  limitOf(decision: RouteDecision): number | undefined {
    return decision.account.maxCps ?? this.settings.defaultMaxCps;
  }

  async admit({ callId }: InviteUnderWay, decision: RouteDecision, rules: Rules): Promise<Decision> {
    const maxCps = this.limitOf(decision);
    if (maxCps === undefined) return decision;
    const { metrics, logger } = this.o;
    const account = decision.account.id;
    const now = performance.now();
    const seen = this.seenOnMaster.get(account);
    const seenCount = seen && seen.at > now - RATE_WINDOW_MS ? seen.count : undefined;
    const path = ratePath(maxCps, this.recent.count(account, now), seenCount, this.o.sharingEdges(), this.settings.memoryShare);
    if (path === 'full') return this.refuse('full', decision, rules);
    // Counted on this edge before any wait, like a channel: the next INVITE counts it.
    this.recent.add(account, now);
    const master = this.o.master as Redis & RateScripts;
    if (path === 'memory') {
      master.takeRate(rateKey(account), callId, maxCps, '').then(
        ([, count]) => this.seenOnMaster.set(account, { count, at: performance.now() }),
        (err: Error) => logger.debug({ callId, account, err: err.message }, 'call rate: admission not written on the master'),
      );
      metrics.limitAdmissions.inc({ limit: 'cps', path: 'memory' });
      return decision;
    }
    try {
      if (master.status !== 'ready') throw new Error(`master not connected (${master.status})`);
      const reply = await answerWithin(master.takeRate(rateKey(account), callId, maxCps, 'check'), this.settings.masterTimeoutMs);
      if (reply === 'late') throw new Error(`no answer from the master within ${this.settings.masterTimeoutMs} ms`);
      this.seenOnMaster.set(account, { count: reply[1], at: performance.now() });
      if (reply[0] === 1) {
        metrics.limitAdmissions.inc({ limit: 'cps', path: 'master' });
        return decision;
      }
      logger.info({ callId, account, maxCps, inWindow: reply[1] }, 'call rate limit reached on the master');
      this.recent.withdraw(account, now);
      return this.refuse('master-full', decision, rules);
    } catch (err) {
      metrics.limitAdmissions.inc({ limit: 'cps', path: 'fallback' });
      logger.warn({ callId, account, maxCps, why: (err as Error).message }, 'call rate not checked on the master: admitted');
      return decision;
    }
  }

  private refuse(path: 'full' | 'master-full', decision: RouteDecision, rules: Rules): Decision {
    this.o.metrics.limitAdmissions.inc({ limit: 'cps', path });
    return rejection('call-rate', 'call rate limit reached', decision.basis, rules, decision.account);
  }

  stop(): void {
    clearInterval(this.pruner);
  }
}
