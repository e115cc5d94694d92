import type Srf from 'drachtio-srf';
import { LRUCache } from 'lru-cache';
import type { AbsenceGuard } from '../accounts/absence-guard.js';
import type { AbsenceProbe } from '../accounts/absence-probe.js';
import { readAccountState, type AccountState } from '../accounts/account-state.js';
import { DEFAULT_ROUTE_GROUP } from '../accounts/account.js';
import type { AccountReader } from '../accounts/reader.js';
import type { StaleCache } from '../accounts/stale-cache.js';
import type { EdgeMetrics } from '../admin/metrics.js';
import { fixedShapeLogger, type Logger } from '../log.js';
import { accountOnRecord, creditCutReason, decide, overloadRejection, rejection, shuttingDownRejection, type Basis, type CallsInProgress, type Decision, type RejectDecision, type RouteDecision } from '../policy/decide.js';
import type { Rules } from '../policy/rules.js';
import { CallEnder, seenDialog, type EndOutcome, type RequestSender } from './call-ender.js';
import type { CallRecorder } from './call-records.js';
import type { LocalCallsInProgress } from './calls-in-progress.js';
import { callsInProgressOf } from './channel-count.js';
import type { ChannelAdmission, InviteUnderWay } from './channel-admission.js';
import type { RateAdmission } from './rate-admission.js';
import { challengeHeader, createNonce, verifyDigest, type DigestCredentials } from './digest.js';
import type { Identifier, Identity } from './identify.js';

export interface EdgeOptions {
  rules: Rules;
  identifier: Identifier;
  reader: AccountReader;
  cache: StaleCache;
  guard: AbsenceGuard;
  probe?: AbsenceProbe;
  calls: LocalCallsInProgress;
  /** Records calls in progress on the master (answered: proxy result; ended: cdr:stop); absent: not recorded. */
  records?: CallRecorder;
  /** The channel limit across edges (with records only); absent: this edge's own count decides. */
  channels?: ChannelAdmission;
  /** The calls-per-second limit across edges (with records only); absent: none. */
  rate?: RateAdmission;
  /** Above this many INVITEs being decided, answer 503 at once, before any Redis work. */
  maxInFlight: number;
  digest: { realm: string; nonceSecret: string; maxNonceAgeMs: number };
  proxy: { provisionalTimeout?: string; finalTimeout?: string };
  /** Adds X-Credit-Decision to every answer the edge gives itself. */
  decisionHeader: boolean;
  /** config node_id: the decision header names the edge that decided. */
  nodeId: string;
  /** Benchmark only (config `bypass_gating`): route identified calls to `default` with no lookup. */
  bypassGating?: boolean;
  logger: Logger;
  metrics: EdgeMetrics;
}

/** The options a config reload may change while calls are in progress. */
export type LiveOptions = Partial<Pick<EdgeOptions, 'rules' | 'identifier' | 'maxInFlight' | 'proxy' | 'decisionHeader'>> & { digestRealm?: string };

/** The last decision taken for an account on this edge (admin API). */
export interface LastDecision {
  /** When (ms since epoch): formatted only when someone asks, not on every INVITE. */
  at: number;
  callId: string;
  outcome: string;
  status: string;
  basis: Basis;
}

/** What deciding an INVITE comes to: a decision, or a 407 sent instead. */
type Decided = Decision | 'challenged';

type Request = Srf.SrfRequest & { source_address: string; on(event: 'cancel', listener: () => void): void };

/**
 * The credit-gating edge, wired into drachtio-srf: for each INVITE, identify the account, read its
 * state (tri-state lookup + stale cache), decide with the pure table, then proxy or reject.
 * OPTIONS (trunk keepalives) get 200 (503 while draining). A proxied call answered (the proxy's
 * result) starts its record; its end (CDR stop) or a failed attempt releases it.
 */
export class EdgeApp {
  private inFlight = 0;
  /** Set by drain(): no new call, the calls in progress carried to their end. */
  private draining = false;
  private readonly lastDecisions = new LRUCache<string, LastDecision>({ max: 10_000 });
  /** The decision line: one per INVITE, so it skips the nested secret search (see fixedShapeLogger). */
  private readonly decisionLog: Logger;
  /** The answered calls as seen, to end them with a BYE to each party. */
  private readonly ender: CallEnder;

  constructor(
    private readonly srf: Srf,
    private o: EdgeOptions,
  ) {
    this.decisionLog = fixedShapeLogger(o.logger);
    this.ender = new CallEnder(srf as unknown as RequestSender, o.logger, o.metrics);
    srf.invite((req, res) => void this.onInvite(req as Request, res));
    // drachtio-srf has srf.options(); its bundled typings miss it.
    (srf as unknown as { options(h: (req: Srf.SrfRequest, res: Srf.SrfResponse) => void): void }).options((_req, res) => res.send(this.draining ? 503 : 200));
    srf.on('cdr:stop', (...args: unknown[]) => {
      const msg = args[args.length - 1] as Srf.SipMessage;
      const callId = msg.get('Call-ID');
      this.callOver(callId);
      this.ender.forget(callId);
    });
    // No cdr:start subscription: the proxy's result says the call was answered (see route()).
    // Subscribing would cost two more wire messages per answered call (the server reports both
    // legs), each parsed into a SipMessage by drachtio-srf, for what the edge knows already.
  }

  private async onInvite(req: Request, res: Srf.SrfResponse): Promise<void> {
    const started = performance.now();
    const callId = req.get('Call-ID');
    const { metrics } = this.o;
    if (this.draining || this.inFlight >= this.o.maxInFlight) {
      const refused = this.draining ? shuttingDownRejection(this.o.rules) : overloadRejection(this.o.rules);
      if (!this.draining) metrics.overloadRejections.inc();
      this.reject(res, refused);
      const ms = performance.now() - started;
      metrics.pddSeconds.observe({ path: 'rejected' }, ms / 1000);
      this.record(callId, undefined, refused, ms);
      return;
    }
    this.inFlight++;
    metrics.invitesInFlight.inc();
    let canceled = false;
    req.on('cancel', () => (canceled = true));
    let identity: Identity | undefined;
    try {
      identity = this.o.identifier.identify({ sourceAddress: req.source_address, header: (name) => req.get(name) }); // drachtio-srf: undefined when absent
      const pending = this.decideFor(req, { callId, started }, identity);
      // Awaited only when it must be: a decision from the local copy goes out in this same turn.
      const decision = pending instanceof Promise ? await pending : pending;
      if (decision === 'challenged') return;
      const decidedMs = performance.now() - started;
      if (canceled) {
        // A channel it may hold goes back.
        this.callOver(callId);
      } else {
        if (decision.action === 'reject') this.reject(res, decision);
        else this.route(req, callId, decision.account.id, decision.targets, decision.account.rate);
        metrics.pddSeconds.observe({ path: decision.action === 'reject' ? 'rejected' : 'proxied' }, (performance.now() - started) / 1000);
      }
      // Logged once the answer or the proxied INVITE is on its way: the line is not part of the delay.
      this.record(callId, identity, decision, decidedMs);
    } catch (err) {
      // Never a 403 from a fault of our own: 503 lets the caller's carrier try elsewhere.
      this.o.logger.error({ callId, err }, 'INVITE handling failed');
      this.callOver(callId);
      const failed = rejection('state-unknown', 'edge error', { source: 'none', because: 'error', detail: (err as Error).message }, this.o.rules);
      if (!canceled && !res.finalResponseSent) this.reject(res, failed);
    } finally {
      this.inFlight--;
      metrics.invitesInFlight.dec();
    }
  }

  /**
   * Identification, lookup and the decision table; 'challenged' when a 407 went out instead. A
   * value, not a promise, when nothing had to be waited for (the local copy decided).
   */
  private decideFor(req: Request, call: InviteUnderWay, identity: Identity): Decided | Promise<Decided> {
    const { rules } = this.o;
    switch (identity.kind) {
      case 'none':
        return rejection('unknown-account', 'no account matches the caller', { source: 'none', because: 'unidentified', detail: req.source_address }, rules);
      case 'challenge':
        this.challenge(req, false);
        return 'challenged';
      case 'account':
        if (this.o.bypassGating) return this.bypassed(identity.accountId);
        return andThen(readAccountState(this.o, identity.accountId), (state) => this.decideOn(call, identity.accountId, state));
      case 'credentials':
        return andThen(readAccountState(this.o, identity.accountId), (state) => this.decideWithCredentials(req, call, identity.accountId, identity.credentials, state));
    }
  }

  private decideWithCredentials(req: Request, call: InviteUnderWay, accountId: string, credentials: DigestCredentials, state: AccountState): Decided | Promise<Decided> {
    const { rules } = this.o;
    const onRecord = accountOnRecord(state, rules);
    // Absent: 403; unknown and nothing on record: 503. A password that cannot be read is never a 403.
    if (!onRecord) return this.decideOn(call, accountId, state);
    const verdict = this.checkDigest(req, credentials, onRecord.account.sipPassword);
    if (verdict === 'stale-nonce') {
      this.challenge(req, true);
      return 'challenged';
    }
    if (verdict !== 'ok') return rejection('unknown-account', `bad credentials: ${verdict}`, onRecord.basis, rules, onRecord.account);
    return this.decideOn(call, accountId, state);
  }

  private decideOn(call: InviteUnderWay, accountId: string, state: AccountState): Decision | Promise<Decision> {
    if (state.lookup.outcome === 'unknown') this.o.metrics.unknownLookups.inc({ cause: state.lookup.cause });
    const callsInProgress = callsInProgressOf(state, this.o.calls.count(accountId));
    const decision = decide({ lookup: state.lookup, cached: state.cached, callsInProgress }, this.o.rules);
    // The common case stays synchronous: a refusal, or an account with no limit shared across edges.
    const { channels, rate } = this.o;
    const limitedChannels = channels !== undefined && decision.action === 'route' && decision.account.maxChannels !== undefined;
    const limitedRate = rate !== undefined && decision.action === 'route' && rate.limitOf(decision) !== undefined;
    if (decision.action === 'reject' || (!limitedChannels && !limitedRate)) return decision;
    return this.admitWithinLimits(call, decision, callsInProgress, limitedChannels, limitedRate);
  }

  /** The limits shared across edges: the channel first, then the call rate (a call refused for its rate gives its channel back). */
  private async admitWithinLimits(call: InviteUnderWay, decision: RouteDecision, callsInProgress: CallsInProgress, limitedChannels: boolean, limitedRate: boolean): Promise<Decision> {
    const { channels, rate, rules } = this.o;
    let admitted: Decision = decision;
    if (limitedChannels) admitted = await channels!.admit(call, decision, callsInProgress, rules);
    if (admitted.action === 'route' && limitedRate) {
      admitted = await rate!.admit(call, decision, rules);
      if (admitted.action === 'reject') this.callOver(call.callId);
    }
    return admitted;
  }

  /** Gating off, for the benchmark's baseline: the same path minus the lookup and the decision table. */
  private bypassed(accountId: string): Decision {
    const targets = this.o.rules.routes[DEFAULT_ROUTE_GROUP] ?? [];
    const account = { id: accountId, enabled: true, creditBlocked: false, route: DEFAULT_ROUTE_GROUP };
    return { action: 'route', account, routeGroup: DEFAULT_ROUTE_GROUP, targets, basis: { source: 'none', because: 'bypassed', detail: 'bypass_gating' } };
  }

  private checkDigest(req: Request, credentials: DigestCredentials, password: string | undefined): string {
    if (password === undefined) return 'no-password';
    const { realm, nonceSecret, maxNonceAgeMs } = this.o.digest;
    return verifyDigest({ credentials, method: req.method, password, realm, secret: nonceSecret, nowMs: Date.now(), maxNonceAgeMs });
  }

  private challenge(req: Request, stale: boolean): void {
    const { realm, nonceSecret } = this.o.digest;
    const nonce = createNonce(nonceSecret, Date.now());
    (req as unknown as { res: Srf.SrfResponse }).res.send(407, 'Proxy Authentication Required', {
      headers: { 'Proxy-Authenticate': challengeHeader({ realm, nonce, stale }) },
    });
  }

  private route(req: Request, callId: string, accountId: string, targets: string[], rate?: number): void {
    const { calls, records, proxy, logger } = this.o;
    calls.add(accountId, callId);
    records?.routed(callId, accountId, rate);
    // drachtio-srf returns a promise when no callback is given; its typings say void.
    const proxied = this.srf.proxyRequest(req, targets, { remainInDialog: true, ...proxy }) as unknown as Promise<unknown>;
    proxied
      .then((result) => {
        const { finalStatus, finalResponse } = result as { finalStatus?: number; finalResponse?: { msg: Srf.SipMessage } };
        // The proxy settles once a final response came back: a 2xx means the call was answered
        // (drachtio-srf's own `connected` is true for 200 only), and its record starts now.
        if (finalStatus !== undefined && finalStatus >= 200 && finalStatus < 300) {
          records?.answered(callId);
          // Its cdr:stop may have come first (a very short call): nothing is left to end then.
          if (calls.has(callId)) this.ender.answered(callId, finalResponse && seenDialog(callId, accountId, req, finalResponse.msg));
        } else this.callOver(callId);
        logger.debug({ callId, account: accountId, finalStatus }, 'proxy done');
      })
      .catch((err: unknown) => {
        this.callOver(callId);
        logger.warn({ callId, account: accountId, err }, 'proxy failed');
      });
  }

  /** The call no longer holds a channel on this edge: its attempt failed, or it ended. Unknown Call-IDs are ignored. */
  private callOver(callId: string): void {
    this.o.calls.end(callId);
    this.o.records?.ended(callId);
  }

  private reject(res: Srf.SrfResponse, decision: RejectDecision): void {
    const headers: Record<string, string> = { Reason: decision.reason };
    if (decision.retryAfter !== undefined) headers['Retry-After'] = String(decision.retryAfter);
    if (this.o.decisionHeader) headers['X-Credit-Decision'] = `${describeBasis(decision.verdict, decision.basis)}; edge=${this.o.nodeId}`;
    res.send(decision.status, decision.phrase, { headers });
  }

  /** One log line and the metrics for each decision; `ms`: from the INVITE to its decision. */
  private record(callId: string, identity: Identity | undefined, decision: Decision, ms: number): void {
    const outcome = decision.action === 'route' ? 'route' : decision.verdict;
    const status = decision.action === 'route' ? 'proxy' : String(decision.status);
    const { basis } = decision;
    this.o.metrics.decisions.inc({ outcome, status, basis: basis.source });
    this.o.metrics.decisionSeconds.observe(ms / 1000);
    if (basis.source === 'cache') this.o.metrics.staleServes.inc({ cause: basis.because });
    if (identity && 'accountId' in identity) this.lastDecisions.set(identity.accountId, { at: Date.now(), callId, outcome, status, basis });
    // Every field here is a string, a number or a Basis: none can carry a secret (fixedShapeLogger).
    this.decisionLog.info(
      {
        callId,
        account: identity && 'accountId' in identity ? identity.accountId : undefined,
        via: identity?.kind === 'account' ? identity.method : identity?.kind === 'credentials' ? 'digest' : undefined,
        outcome,
        status,
        reason: decision.action === 'reject' ? decision.reason : undefined,
        targets: decision.action === 'route' ? decision.targets : undefined,
        basis,
        ms: Math.round(ms * 1000) / 1000,
      },
      'decision',
    );
  }

  /**
   * Takes a reloaded config's live parts. Each INVITE reads the options as it goes, so one being
   * decided right now may finish on the new rules; nothing in flight is dropped.
   */
  applyConfig(live: LiveOptions): void {
    const { digestRealm, ...rest } = live;
    // The nonce secret stays: challenges already sent must still verify.
    this.o = { ...this.o, ...rest, ...(digestRealm !== undefined && { digest: { ...this.o.digest, realm: digestRealm } }) };
  }

  /**
   * The SIP server connection dropped: the ends of the calls routed so far can no longer be seen
   * (cdr:stop goes to a connected app, and a restarted server has lost their dialogs), so they
   * end here and in the records now, their cost counted up to this instant. Kept, they would hold
   * channels and grow in the controller's projection forever: a funded account blocked, which the
   * product must never do (the randomized soak found it). Returns how many ended.
   */
  sipServerLost(): number {
    const callIds = this.o.calls.endAll();
    for (const callId of callIds) this.o.records?.ended(callId);
    this.ender.forgetAll();
    return callIds.length;
  }

  /**
   * Ends an answered call this edge carries, with a BYE to each party carrying `reason` (a
   * Reason header value). Once both parties confirmed, the call ends here and in the records, as
   * on cdr:stop (a BYE the edge sends does not pass the SIP server's proxy, so no CDR follows).
   * Undefined when this edge carries no such answered call.
   */
  async endCall(callId: string, reason: string): Promise<EndOutcome | undefined> {
    const outcome = await this.ender.end(callId, reason);
    if (outcome?.ended) this.callOver(callId);
    return outcome;
  }

  /** The Reason of the BYEs that end a call for credit, as the current rules say it. */
  get cutReason(): string {
    return creditCutReason(this.o.rules);
  }

  /** From now on no new call (shutting-down 503s); the calls in progress go on (see shutdown.drain_ms). */
  drain(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Calls this edge carries now (routed, answered or not yet). */
  get callsInProgress(): number {
    return this.o.calls.total;
  }

  lastDecision(accountId: string): LastDecision | undefined {
    return this.lastDecisions.get(accountId);
  }

  get invitesInFlight(): number {
    return this.inFlight;
  }
}

/** `X-Credit-Decision` value (the edge's name follows): `out-of-credit; basis=cache; age=1800ms; because=loading`. */
function describeBasis(outcome: string, basis: Basis): string {
  switch (basis.source) {
    case 'replica':
      return `${outcome}; basis=replica; replica=${basis.replica}${basis.localCopy ? '; local-copy' : ''}`;
    case 'cache':
      return `${outcome}; basis=cache; age=${Math.round(basis.ageMs)}ms; because=${basis.because}`;
    case 'none':
      return `${outcome}; basis=none; because=${basis.because}`;
  }
}

/** `f` applied to `value`, at once when it is one, once it settles when it is a promise. */
function andThen<T, U>(value: T | Promise<T>, f: (value: T) => U | Promise<U>): U | Promise<U> {
  return value instanceof Promise ? value.then(f) : f(value);
}
