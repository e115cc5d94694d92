import type { Logger } from '../log.js';

/**
 * Ends calls the edge proxied, from the middle, with a BYE to each party: what Kamailio's dialog
 * module does (dlg_end_dlg), and what a proxy that must stop a call past its credit needs. A
 * record-routing proxy is in the route set of both parties, so it may send in-dialog requests of
 * either one; it only has to remember the dialog as it saw it pass:
 * - from the INVITE: the caller's From (with its tag), Contact, CSeq and the Record-Route added
 *   by proxies upstream of the edge;
 * - from the 2xx: the callee's To (with its tag), Contact and its Record-Route list.
 *
 * Each BYE goes through the SIP server (drachtio-server or the embedded engine) as a request
 * outside the server's dialogs (`srf.request`). drachtio-server lets an app set From, To,
 * Call-ID and CSeq there, not Route (it is the server's), so the BYE goes to the nearest proxy
 * of the route set (its `proxy` option) with the party's Contact as Request-URI: right for a
 * party reached directly or through one loose-routing proxy, which is what an edge faces (the
 * caller's carrier, the route's carrier). A longer route set is logged with the BYE.
 *
 * CSeq: 2^31 - 1, the highest a UA may have used (RFC 3261 8.1.1.5). The proxy does not see the
 * in-dialog requests that followed the INVITE (re-INVITEs, UPDATEs pass the SIP server without
 * reaching the app), so only the highest number is sure to be above them (12.2.2: a lower one
 * gets 500). Nothing follows a BYE in the dialog, so no later request needs a higher one.
 */

/** RFC 3261 8.1.1.5: a CSeq number is below 2^31. */
export const ENDING_CSEQ = 2 ** 31 - 1;
/** drachtio-server answers 408 itself after Timer F (32 s); this only bounds a lost answer. */
const BYE_TIMEOUT_MS = 40_000;

export interface SeenDialog {
  callId: string;
  account: string;
  /** The INVITE's From, with the caller's tag. */
  callerFrom: string;
  callerContact: string;
  /** Record-Route of the INVITE as the edge got it: proxies between the caller and the edge. */
  upstreamRoutes: string[];
  /** The 2xx's To, with the callee's tag. */
  calleeTo: string;
  calleeContact: string;
  /** Record-Route of the 2xx: the callee's proxies, the edge's own entry, then upstreamRoutes. */
  answerRoutes: string[];
}

/** A SIP message's headers as drachtio-srf gives them (undefined when absent). */
export interface Headers {
  get(name: string): string | undefined;
}

/** What the edge remembers of an answered call, or undefined when it lacks what a BYE needs. */
export function seenDialog(callId: string, account: string, invite: Headers, answer: Headers): SeenDialog | undefined {
  const callerFrom = invite.get('From');
  const callerContact = uriOf(invite.get('Contact'));
  const calleeTo = answer.get('To');
  const calleeContact = uriOf(answer.get('Contact'));
  if (!callerFrom || !callerContact || !calleeTo || !calleeContact || !/;\s*tag=/i.test(calleeTo)) return undefined;
  return { callId, account, callerFrom, callerContact, upstreamRoutes: headerList(invite.get('Record-Route')), calleeTo, calleeContact, answerRoutes: headerList(answer.get('Record-Route')) };
}

/** One leg's BYE: where it goes and what it says. */
export interface EndingBye {
  leg: 'callee' | 'caller';
  uri: string;
  /** The route set towards that party, nearest proxy first (the BYE goes to the first). */
  routes: string[];
  headers: Record<string, string>;
}

/** The two BYEs that end `d` (pure: what goes on the wire). */
export function endingByes(d: SeenDialog, reason: string): EndingBye[] {
  // Entries above the edge's own in the 2xx were added downstream of it; the nearest is last.
  const downstream = d.answerRoutes.slice(0, Math.max(0, d.answerRoutes.length - d.upstreamRoutes.length - 1)).reverse();
  const common = { 'Call-ID': d.callId, CSeq: `${ENDING_CSEQ} BYE`, 'Max-Forwards': '70', Reason: reason };
  return [
    { leg: 'callee', uri: d.calleeContact, routes: downstream, headers: { ...common, From: d.callerFrom, To: d.calleeTo } },
    { leg: 'caller', uri: d.callerContact, routes: d.upstreamRoutes, headers: { ...common, From: d.calleeTo, To: d.callerFrom } },
  ];
}

/** ended: the party said 2xx; gone: 481, it had no such call any more; failed: any other answer, or none. */
export type LegOutcome = 'ended' | 'gone' | 'failed';

export interface EndOutcome {
  callee: LegOutcome;
  caller: LegOutcome;
  /** Both parties confirmed, one way or the other: nothing of the call is left running. */
  ended: boolean;
}

export interface CallEnderMetrics {
  /** BYEs the edge sent to end calls, by leg and outcome. */
  endingByes: { inc(labels: { leg: string; outcome: string }): void };
  /** Answered calls without what a BYE needs: calls the edge could not end. */
  callsNotEndable: { inc(): void };
}

/**
 * The SIP server as far as a BYE is concerned: drachtio-srf's `srf.request(uri, opts, callback)`,
 * whose request emits 'response' (its bundled typings describe another signature).
 */
export interface RequestSender {
  request(uri: string, opts: { method: string; headers: Record<string, string>; proxy?: string }, callback: (err: Error | null, req: SentRequest) => void): void;
}

interface SentRequest {
  on(event: 'response', listener: (res: { status: number }) => void): void;
}

export class CallEnder {
  private readonly dialogs = new Map<string, SeenDialog>();
  /** Ends under way: a second ask for the same call waits for the first instead of sending again. */
  private readonly ending = new Map<string, Promise<EndOutcome>>();

  constructor(
    private readonly srf: RequestSender,
    private readonly logger: Logger,
    private readonly metrics: CallEnderMetrics,
  ) {}

  /** An answered call, as seen; one without what a BYE needs is counted and logged: it cannot be ended. */
  answered(callId: string, dialog: SeenDialog | undefined): void {
    if (dialog) {
      this.dialogs.set(callId, dialog);
      return;
    }
    this.metrics.callsNotEndable.inc();
    this.logger.warn({ callId }, 'answered call without what a BYE needs (From, Contact, a To tag): the edge cannot end it');
  }

  /** The call ended by itself (cdr:stop) or can no longer be followed. */
  forget(callId: string): void {
    this.dialogs.delete(callId);
  }

  forgetAll(): void {
    this.dialogs.clear();
  }

  get size(): number {
    return this.dialogs.size;
  }

  /**
   * Sends both BYEs (with `reason` as their Reason header) and resolves once both are answered;
   * undefined when the edge carries no such answered call. An ended call is forgotten; one that a
   * party did not confirm is kept, so that asking again sends both BYEs again (the party that had
   * confirmed answers 481: gone).
   */
  end(callId: string, reason: string): Promise<EndOutcome> | undefined {
    const under = this.ending.get(callId);
    if (under) return under;
    const d = this.dialogs.get(callId);
    if (!d) return undefined;
    const done = this.endDialog(d, reason).finally(() => this.ending.delete(callId));
    this.ending.set(callId, done);
    return done;
  }

  private async endDialog(d: SeenDialog, reason: string): Promise<EndOutcome> {
    const [callee, caller] = await Promise.all(endingByes(d, reason).map((bye) => this.send(d, bye)));
    const outcome = { callee: callee!, caller: caller!, ended: callee !== 'failed' && caller !== 'failed' };
    const line = { callId: d.callId, account: d.account, callee, caller, reason };
    if (outcome.ended) {
      this.dialogs.delete(d.callId);
      this.logger.info(line, 'call ended by the edge');
    } else {
      this.logger.error({ ...line, alert: true }, 'CALL NOT ENDED: a party did not confirm the BYE');
    }
    return outcome;
  }

  private async send(d: SeenDialog, bye: EndingBye): Promise<LegOutcome> {
    const proxy = bye.routes[0] !== undefined ? uriOf(bye.routes[0]) : undefined;
    if (bye.routes.length > 1) this.logger.warn({ callId: d.callId, leg: bye.leg, routes: bye.routes.length }, 'BYE sent to the nearest of several proxies in the route set');
    let outcome: LegOutcome;
    try {
      const status = await finalStatus(this.srf, bye.uri, { method: 'BYE', headers: bye.headers, ...(proxy && { proxy }) });
      outcome = status >= 200 && status < 300 ? 'ended' : status === 481 ? 'gone' : 'failed';
      if (outcome === 'failed') this.logger.warn({ callId: d.callId, leg: bye.leg, status }, 'BYE refused');
    } catch (err) {
      this.logger.warn({ callId: d.callId, leg: bye.leg, err: (err as Error).message }, 'BYE not sent or not answered');
      outcome = 'failed';
    }
    this.metrics.endingByes.inc({ leg: bye.leg, outcome });
    return outcome;
  }
}

/** Sends a request through the SIP server; resolves with its final response's status. */
function finalStatus(srf: RequestSender, uri: string, opts: { method: string; headers: Record<string, string>; proxy?: string }): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no final response within ${BYE_TIMEOUT_MS} ms`)), BYE_TIMEOUT_MS);
    timer.unref();
    const settle = (fn: () => void) => {
      clearTimeout(timer);
      fn();
    };
    srf.request(uri, opts, (err, req) => {
      if (err) return settle(() => reject(err));
      req.on('response', (res) => {
        if (res.status >= 200) settle(() => resolve(res.status));
      });
    });
  });
}

/** The URI of a name-addr or addr-spec (`"A" <sip:a@h>;p=1` -> `sip:a@h`). */
export function uriOf(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const angled = /<([^>]+)>/.exec(value);
  const uri = (angled ? angled[1]! : value.split(/[;,]/)[0]!).trim();
  return /^sips?:/i.test(uri) ? uri : undefined;
}

/** A comma-separated header (or several of them) as its entries; commas inside <> or quotes stay. */
export function headerList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : value;
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' && text[i - 1] !== '\\') quoted = !quoted;
    else if (!quoted && c === '<') depth++;
    else if (!quoted && c === '>') depth--;
    else if (!quoted && depth === 0 && c === ',') {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  const last = text.slice(start).trim();
  if (last) out.push(last);
  return out.filter(Boolean);
}
