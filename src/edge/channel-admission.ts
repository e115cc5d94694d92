import type { EdgeMetrics } from '../admin/metrics.js';
import type { Logger } from '../log.js';
import { rejection, type CallsInProgress, type Decision, type RouteDecision } from '../policy/decide.js';
import type { Rules } from '../policy/rules.js';
import type { CallRecorder } from './call-records.js';
import type { LocalCallsInProgress } from './calls-in-progress.js';

export interface ChannelAdmissionSettings {
  /** The part of its share of an account's channels (limit / edges present) an edge admits from memory. */
  memoryShare: number;
  /** Admitted from memory only when the INVITE was decided within this many ms of reaching the edge. */
  freshMs: number;
  /** How long a slot taken on the master is awaited before this edge's own count decides. */
  masterTimeoutMs: number;
}

/** An INVITE being decided: its Call-ID, and when it reached the edge (performance.now()). */
export interface InviteUnderWay {
  callId: string;
  started: number;
}

/**
 * Where a call of an account with `max_channels` takes its channel (pure). From memory only
 * while the account's count, with this call, stays within `memoryShare` of this edge's share of
 * the limit (limit / the edges present), and only from a fresh count (a decision slower than
 * `freshMs` read an older one); otherwise on the master, atomically. `edges` undefined (not
 * known for sure): on the master.
 *
 * Why this is exact in practice: each edge's count includes its own calls at once, so what all
 * edges admit from memory can never together exceed the limit, however late each learns of the
 * others'. What is left is a call admitted from memory on a count that misses the last ones the
 * other edges took on the master: with the default half share, for an account with a limit of L
 * that takes more than L / 2 admissions inside the moment a slot takes to reach the other edges
 * (a few ms): a hundred times L calls a second, which max_cps stops first.
 */
export function channelPath(limit: number, inUse: number, edges: number | undefined, ageMs: number, s: Pick<ChannelAdmissionSettings, 'memoryShare' | 'freshMs'>): 'memory' | 'master' {
  return edges !== undefined && (inUse + 1) * edges <= limit * s.memoryShare && ageMs <= s.freshMs ? 'memory' : 'master';
}

/**
 * The channel limit across edges (issue 22): the decision table has found the account under its
 * limit by this edge's count; this makes it exact. A call well within this edge's share is admitted at
 * once and its slot written at once, without waiting (so the other edges count it); any other takes its slot on
 * the master (one script: count records and slots, compare with `max_channels`, take) before it
 * is proxied, so two edges can never both take the last channel. When the master does not answer
 * in time the edge decides on its own count, as before (`channel_fail_policy: reject` refuses),
 * and the metric says so. The slot is given back when the call is answered (its record holds the
 * channel then) or fails (src/edge/call-records.ts).
 */
export class ChannelAdmission {
  constructor(
    private settings: ChannelAdmissionSettings,
    private readonly o: { records: CallRecorder; calls: LocalCallsInProgress; metrics: EdgeMetrics; logger: Logger },
  ) {}

  setSettings(settings: ChannelAdmissionSettings): void {
    this.settings = { ...settings };
  }

  async admit({ callId, started }: InviteUnderWay, decision: RouteDecision, calls: CallsInProgress, rules: Rules): Promise<Decision> {
    const limit = decision.account.maxChannels;
    if (limit === undefined) return decision;
    const { records, metrics, logger } = this.o;
    const inUse = calls.known ? calls.count : (calls.lastSeen ?? 0);
    // Counted on this edge from now, before any wait: the next INVITE of the account, decided
    // while this one waits for the master, counts it (route() adds it again, harmlessly).
    this.o.calls.add(decision.account.id, callId);
    if (channelPath(limit, inUse, records.sharingEdges(), performance.now() - started, this.settings) === 'memory') {
      records.holdSlot(callId, decision.account.id);
      metrics.limitAdmissions.inc({ limit: 'channels', path: 'memory' });
      return decision;
    }
    const answer = await records.takeSlot(callId, decision.account.id, limit, this.settings.masterTimeoutMs);
    if (answer.taken === true) {
      metrics.limitAdmissions.inc({ limit: 'channels', path: 'master' });
      return decision;
    }
    if (answer.taken === false) {
      metrics.limitAdmissions.inc({ limit: 'channels', path: 'master-full' });
      logger.info({ callId, account: decision.account.id, limit, inUse: answer.inUse }, 'channel limit reached on the master');
      return this.refuse(callId, decision, rules);
    }
    metrics.limitAdmissions.inc({ limit: 'channels', path: 'fallback' });
    logger.warn({ callId, account: decision.account.id, limit, inUse, why: answer.why }, "channel slot not taken on the master: decided on this edge's count");
    if (rules.channelFailPolicy === 'reject') return this.refuse(callId, decision, rules);
    records.holdSlot(callId, decision.account.id);
    return decision;
  }

  /** Not admitted after all: the call leaves this edge's count, and a slot a late answer took goes back. */
  private refuse(callId: string, decision: RouteDecision, rules: Rules): Decision {
    this.o.calls.end(callId);
    this.o.records.ended(callId);
    return rejection('channel-limit', 'channel limit reached', decision.basis, rules, decision.account);
  }
}
