import { randomUUID } from 'node:crypto';
import type { AppClient } from './control.js';
import type { Source, Transport } from './transport.js';
import { newTag, parseCSeq, serialize, splitList, tagOf, topVia, type SipMessage } from './sip.js';

/**
 * RFC 3261 section 17 transactions. Server transactions absorb request retransmissions and
 * retransmit non-2xx finals over UDP until ACKed (Timers G/H/I, J for non-INVITE); client
 * transactions retransmit requests over UDP (Timers A/E), time out (B/F), ACK non-2xx finals
 * hop by hop (D) and let 2xx retransmissions through to their owner (RFC 6026 Timer M).
 */

export interface Timers {
  /** RTT estimate, ms (RFC 3261 default 500). */
  t1: number;
  /** Cap on retransmission interval, ms (default 4000). */
  t2: number;
  /** Time a message may stay in the network, ms (default 5000). */
  t4: number;
  /** How long a proxy waits for a final after a provisional (RFC 3261 Timer C, > 3 min). */
  timerC: number;
}

export const DEFAULT_TIMERS: Timers = { t1: 500, t2: 4000, t4: 5000, timerC: 185_000 };

export interface Dest {
  protocol: 'udp' | 'tcp';
  address: string;
  port: number;
  conn?: Source['conn'];
}

type ServerState = 'trying' | 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated';

export class ServerTxn {
  /** The id the app knows this transaction by (drachtio's transactionId). */
  readonly id = randomUUID();
  readonly isInvite: boolean;
  readonly callId: string;
  readonly toTag = newTag();
  state: ServerState;
  lastStatus = 0;
  lastResponse?: string;
  /** The app that was handed this request, if any. */
  owner?: AppClient;
  /** Set when the app proxies the request; CANCEL and retransmissions then concern the proxy. */
  proxy?: { cancel(cancelReq: SipMessage, cancelRaw: string): void };
  /** For app-answered INVITEs: the dialog id given to the app. */
  dialogId?: string;
  timers: NodeJS.Timeout[] = [];

  constructor(
    readonly key: string,
    readonly req: SipMessage,
    readonly raw: string,
    readonly source: Source,
  ) {
    this.isInvite = req.method === 'INVITE';
    this.callId = req.headers['call-id'] ?? '';
    this.state = this.isInvite ? 'proceeding' : 'trying';
  }

  get finalSent(): boolean {
    return this.lastStatus >= 200;
  }
}

type ClientState = 'calling' | 'trying' | 'proceeding' | 'completed' | 'accepted' | 'terminated';

export interface ClientEvents {
  onResponse(res: SipMessage, raw: string, source: Source): void;
  /** Timer B/F: no final response in time (treated as 408 by the owner). */
  onTimeout(): void;
}

export class ClientTxn {
  state: ClientState;
  readonly isInvite: boolean;
  readonly key: string;
  timers: NodeJS.Timeout[] = [];
  retransmitTimer?: NodeJS.Timeout;
  lastStatus = 0;

  constructor(
    readonly branch: string,
    readonly req: SipMessage,
    readonly text: string,
    readonly dest: Dest,
    readonly events: ClientEvents,
  ) {
    this.isInvite = req.method === 'INVITE';
    this.state = this.isInvite ? 'calling' : 'trying';
    this.key = `${branch}|${req.method}`;
  }
}

export function serverKey(msg: SipMessage, methodOverride?: string): string {
  const via = topVia(msg.headers.via ?? '');
  const method = methodOverride ?? msg.method ?? '';
  const branch = via?.params.branch;
  const sentBy = via ? `${via.host}:${via.port ?? ''}` : '';
  if (branch && branch.startsWith('z9hG4bK')) return `${branch}|${sentBy}|${method}`;
  // RFC 2543 peers: no usable branch, fall back to the dialog-ish identifiers.
  const cseq = parseCSeq(msg.headers.cseq ?? '');
  return `${msg.headers['call-id']}|${cseq?.seq}|${tagOf(msg.headers.from)}|${sentBy}|${method}`;
}

export class TransactionLayer {
  private readonly servers = new Map<string, ServerTxn>();
  private readonly serversById = new Map<string, ServerTxn>();
  private readonly clients = new Map<string, ClientTxn>();

  constructor(
    private readonly transport: Transport,
    readonly timers: Timers,
  ) {}

  get sizes(): { servers: number; clients: number } {
    return { servers: this.servers.size, clients: this.clients.size };
  }

  // ---- server side ----

  findServer(key: string): ServerTxn | undefined {
    return this.servers.get(key);
  }

  serverById(id: string): ServerTxn | undefined {
    return this.serversById.get(id);
  }

  createServer(key: string, req: SipMessage, raw: string, source: Source): ServerTxn {
    const stx = new ServerTxn(key, req, raw, source);
    this.servers.set(key, stx);
    this.serversById.set(stx.id, stx);
    return stx;
  }

  /** Sends a response within the transaction and moves its state machine. Returns the text sent. */
  respond(stx: ServerTxn, res: SipMessage): string | undefined {
    if (stx.state === 'terminated' || stx.finalSent) return undefined;
    const text = serialize(res);
    const status = res.status ?? 0;
    stx.lastStatus = status;
    stx.lastResponse = text;
    this.transport.send(text, stx.source);
    if (status < 200) {
      if (!stx.isInvite) stx.state = 'proceeding';
      return text;
    }
    const { t1, t2 } = this.timers;
    const udp = stx.source.protocol === 'udp';
    if (stx.isInvite && status < 300) {
      // RFC 6026 Accepted: absorb INVITE retransmissions for 64*T1; the 2xx is end to end.
      stx.state = 'accepted';
      this.after(stx, 64 * t1, () => this.terminateServer(stx));
    } else if (stx.isInvite) {
      stx.state = 'completed';
      if (udp) {
        let interval = t1;
        const g = () => {
          if (stx.state !== 'completed') return;
          this.transport.send(text, stx.source);
          interval = Math.min(2 * interval, t2);
          this.after(stx, interval, g);
        };
        this.after(stx, interval, g);
      }
      this.after(stx, 64 * t1, () => this.terminateServer(stx)); // Timer H: ACK never came
    } else {
      stx.state = 'completed';
      if (udp) this.after(stx, 64 * t1, () => this.terminateServer(stx)); // Timer J
      else this.terminateServer(stx);
    }
    return text;
  }

  /** A retransmitted request: repeat the last response, if there is one (RFC 3261 17.2.1/17.2.2). */
  retransmission(stx: ServerTxn): void {
    if (stx.state === 'accepted' || stx.state === 'confirmed' || stx.state === 'terminated') return;
    if (stx.lastResponse) this.transport.send(stx.lastResponse, stx.source);
  }

  /** ACK for a non-2xx final: stop retransmitting, linger Timer I for ACK retransmissions. */
  ack(stx: ServerTxn): void {
    if (stx.state !== 'completed') return;
    stx.state = 'confirmed';
    this.clearTimers(stx);
    if (stx.source.protocol === 'udp') this.after(stx, this.timers.t4, () => this.terminateServer(stx));
    else this.terminateServer(stx);
  }

  /** Server transactions still waiting on `owner` for a final response (app went away). */
  pendingFor(owner: AppClient): ServerTxn[] {
    const out: ServerTxn[] = [];
    for (const s of this.servers.values()) if (s.owner === owner && !s.finalSent && !s.proxy) out.push(s);
    return out;
  }

  terminateServer(stx: ServerTxn): void {
    stx.state = 'terminated';
    this.clearTimers(stx);
    if (this.servers.get(stx.key) === stx) this.servers.delete(stx.key);
    this.serversById.delete(stx.id);
  }

  // ---- client side ----

  /** Sends `req` (already carrying our Via with `branch`) to dest and runs its timers. */
  startClient(branch: string, req: SipMessage, dest: Dest, events: ClientEvents): ClientTxn {
    const text = serialize(req);
    const ctx = new ClientTxn(branch, req, text, dest, events);
    this.clients.set(ctx.key, ctx);
    this.transport.send(text, dest);
    const { t1, t2 } = this.timers;
    if (dest.protocol === 'udp') {
      let interval = t1;
      const retransmit = () => {
        if (ctx.state !== 'calling' && ctx.state !== 'trying' && ctx.state !== 'proceeding') return;
        if (ctx.isInvite && ctx.state === 'proceeding') return; // Timer A stops on a provisional
        this.transport.send(text, dest);
        interval = ctx.isInvite ? 2 * interval : Math.min(2 * interval, t2);
        ctx.retransmitTimer = this.afterC(ctx, interval, retransmit);
      };
      ctx.retransmitTimer = this.afterC(ctx, interval, retransmit);
    }
    // Timer B (INVITE) / F (non-INVITE): no final response at all.
    this.afterC(ctx, 64 * t1, () => {
      if (ctx.state === 'calling' || ctx.state === 'trying' || (!ctx.isInvite && ctx.state === 'proceeding')) {
        this.terminateClient(ctx);
        ctx.events.onTimeout();
      }
    });
    return ctx;
  }

  /** Routes a response whose top Via is ours. Returns false when no transaction matches. */
  clientResponse(branch: string, res: SipMessage, raw: string, source: Source): boolean {
    const cseq = parseCSeq(res.headers.cseq ?? '');
    const ctx = cseq && this.clients.get(`${branch}|${cseq.method}`);
    if (!ctx) return false;
    const status = res.status ?? 0;
    const { t1, t4 } = this.timers;
    const udp = ctx.dest.protocol === 'udp';
    switch (ctx.state) {
      case 'calling':
      case 'trying':
      case 'proceeding':
        ctx.lastStatus = status;
        if (status < 200) {
          ctx.state = 'proceeding';
          if (ctx.isInvite && ctx.retransmitTimer) clearTimeout(ctx.retransmitTimer);
        } else if (ctx.isInvite && status < 300) {
          ctx.state = 'accepted';
          this.clearClientTimers(ctx);
          this.afterC(ctx, 64 * t1, () => this.terminateClient(ctx)); // Timer M
        } else {
          ctx.state = 'completed';
          this.clearClientTimers(ctx);
          if (ctx.isInvite) this.sendAck(ctx, res);
          // Timer D (32 s) / K (T4) absorb final retransmissions over UDP.
          if (udp) this.afterC(ctx, ctx.isInvite ? Math.max(32_000, 64 * t1) : t4, () => this.terminateClient(ctx));
          else this.terminateClient(ctx);
        }
        ctx.events.onResponse(res, raw, source);
        return true;
      case 'accepted':
        if (status >= 200 && status < 300) ctx.events.onResponse(res, raw, source);
        return true;
      case 'completed':
        if (ctx.isInvite && status >= 300) this.sendAck(ctx, res);
        return true;
      default:
        return true;
    }
  }

  /** CANCEL for a client INVITE transaction (RFC 3261 9.1): same branch and R-URI, own transaction. */
  cancelClient(ctx: ClientTxn, extraHeaders?: Record<string, string>): void {
    const cancel = sameTransactionRequest(ctx, 'CANCEL', ctx.req.headers.to ?? '', extraHeaders);
    this.startClient(ctx.branch, cancel, ctx.dest, { onResponse: () => {}, onTimeout: () => {} });
  }

  terminateClient(ctx: ClientTxn): void {
    ctx.state = 'terminated';
    this.clearClientTimers(ctx);
    if (this.clients.get(ctx.key) === ctx) this.clients.delete(ctx.key);
  }

  stopAll(): void {
    for (const s of this.servers.values()) this.clearTimers(s);
    for (const c of this.clients.values()) this.clearClientTimers(c);
    this.servers.clear();
    this.serversById.clear();
    this.clients.clear();
  }

  /** Hop-by-hop ACK for a non-2xx final (RFC 3261 17.1.1.3). */
  private sendAck(ctx: ClientTxn, res: SipMessage): void {
    const ack = sameTransactionRequest(ctx, 'ACK', res.headers.to ?? ctx.req.headers.to ?? '');
    this.transport.send(serialize(ack), ctx.dest);
  }

  private after(stx: ServerTxn, ms: number, fn: () => void): void {
    const t = setTimeout(fn, ms);
    t.unref();
    stx.timers.push(t);
  }

  private afterC(ctx: ClientTxn, ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(fn, ms);
    t.unref();
    ctx.timers.push(t);
    return t;
  }

  private clearTimers(stx: ServerTxn): void {
    for (const t of stx.timers) clearTimeout(t);
    stx.timers = [];
  }

  private clearClientTimers(ctx: ClientTxn): void {
    for (const t of ctx.timers) clearTimeout(t);
    ctx.timers = [];
  }
}

/**
 * CANCEL or hop-by-hop ACK for a client INVITE transaction (RFC 3261 9.1, 17.1.1.3): the
 * INVITE's top Via (same branch), Request-URI, Route, From, Call-ID and CSeq number.
 */
function sameTransactionRequest(ctx: ClientTxn, method: 'CANCEL' | 'ACK', to: string, extraHeaders?: Record<string, string>): SipMessage {
  const h = ctx.req.headers;
  const cseq = parseCSeq(h.cseq ?? '');
  return {
    method,
    uri: ctx.req.uri,
    headers: {
      via: splitList(h.via ?? '')[0] ?? '',
      ...(h.route ? { route: h.route } : {}),
      'max-forwards': '70',
      from: h.from ?? '',
      to,
      'call-id': h['call-id'] ?? '',
      cseq: `${cseq?.seq ?? 1} ${method}`,
      ...extraHeaders,
    },
    body: '',
  };
}
