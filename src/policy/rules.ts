/**
 * What the decision table answers in each case: SIP status, reason phrase, Q.850 cause for the
 * Reason header (RFC 3326), and Retry-After for the 503s. Operators may change phrases and causes
 * per deployment; the defaults follow the design brief.
 */
export interface Rejection {
  status: number;
  phrase: string;
  /** Q.850 cause put in the Reason header. */
  q850: number;
  /** Seconds, sent as Retry-After (only meaningful on 503). */
  retryAfter?: number;
}

export type Verdict =
  | 'account-disabled'
  | 'out-of-credit'
  | 'channel-limit'
  | 'call-rate'
  | 'unknown-account'
  | 'state-unknown'
  | 'no-route'
  | 'overloaded'
  | 'shutting-down';

export type Rejections = Record<Verdict, Rejection>;

/**
 * When the calls in progress of an account cannot be read:
 * - `last-seen`: compare the limit with the last count seen (default: the limit still holds);
 * - `allow`: let the call through;
 * - `reject`: answer the channel-limit rejection.
 */
export type ChannelFailPolicy = 'last-seen' | 'allow' | 'reject';

export interface Rules {
  rejections: Rejections;
  /** Oldest cached copy that may answer for an account whose state is unknown. */
  maxStaleMs: number;
  channelFailPolicy: ChannelFailPolicy;
  /** Route group name -> ordered targets (SIP URIs), tried in turn. */
  routes: Record<string, string[]>;
}

export const DEFAULT_REJECTIONS: Rejections = {
  // Q.850 21: call rejected.
  'account-disabled': { status: 403, phrase: 'Account Not Enabled', q850: 21 },
  // Q.850 52: outgoing calls barred, what prepaid switches send when credit runs out.
  'out-of-credit': { status: 403, phrase: 'Out Of Call Credit', q850: 52 },
  // Q.850 34: no circuit/channel available.
  'channel-limit': { status: 403, phrase: 'Channel Limit Reached', q850: 34 },
  // Q.850 47: resource unavailable. A 403, not a 503: a 503 makes the caller's carrier leave this
  // whole edge alone for Retry-After (RFC 3261 21.5.4), every account with it, for one account's
  // dialer; and the count is known, so the answer is authoritative.
  'call-rate': { status: 403, phrase: 'Call Rate Limit Reached', q850: 47 },
  'unknown-account': { status: 403, phrase: 'Forbidden', q850: 21 },
  // Q.850 41: temporary failure. A short Retry-After lets the caller's carrier fail over now
  // without shunning this edge for long.
  'state-unknown': { status: 503, phrase: 'Service Unavailable', q850: 41, retryAfter: 5 },
  // Q.850 3: no route to destination (a route group the config does not know).
  'no-route': { status: 503, phrase: 'Service Unavailable', q850: 3, retryAfter: 5 },
  // Q.850 42: switching equipment congestion.
  overloaded: { status: 503, phrase: 'Service Unavailable', q850: 42, retryAfter: 2 },
  // Q.850 41: temporary failure. The edge drains its calls before it stops: the caller's carrier
  // fails over to another edge and leaves this one alone until it is back (RFC 3261 21.5.4).
  'shutting-down': { status: 503, phrase: 'Service Unavailable', q850: 41, retryAfter: 30 },
};

export const DEFAULT_RULES: Rules = {
  rejections: DEFAULT_REJECTIONS,
  maxStaleMs: 300_000,
  channelFailPolicy: 'last-seen',
  routes: {},
};
