import dns from 'node:dns/promises';
import net from 'node:net';
import { createHash } from 'node:crypto';
import type { Logger } from '../log.js';
import type { Cdrs } from './cdr.js';
import type { AppClient, ControlServer } from './control.js';
import { sendAppRequest, type AppRequestDeps } from './app-requests.js';
import { parseTimeout, ProxyCore, stripTopVia } from './proxy.js';
import type { Source, Transport } from './transport.js';
import { serverKey, type Dest, type ServerTxn, type TransactionLayer } from './transactions.js';
import {
  buildResponse,
  parseAppMessage,
  parseMessage,
  parseVia,
  REASONS,
  salvageForBadRequest,
  serialize,
  SipParseError,
  splitList,
  stackTime,
  tagOf,
  topVia,
  uriTarget,
  type SipMessage,
} from './sip.js';

/**
 * The engine's message routing: SIP from the network to transactions, the app, the proxy or the
 * in-dialog forwarder; app commands (responses, proxy requests) back to SIP. Mirrors what
 * drachtio-server does for the subset a routing edge uses.
 */

export interface CoreOptions {
  host: string;
  port: number;
  logger: Logger;
  failoverOnAnyFailure: boolean;
}

/** A dialog the app created by answering an INVITE with 2xx itself (UAS). */
interface UasDialog {
  id: string;
  owner: AppClient;
  acked: boolean;
  timers: NodeJS.Timeout[];
}

const HEADERS_FROM_TRANSACTION = new Set(['via', 'from', 'to', 'call-id', 'cseq', 'content-length']);

export class EngineCore {
  private readonly proxies = new Set<ProxyCore>();
  private readonly dialogs = new Map<string, UasDialog>();
  private readonly dnsCache = new Map<string, string>();
  private readonly log: Logger;
  private readonly appRequests: AppRequestDeps;

  constructor(
    private readonly opts: CoreOptions,
    private readonly transport: Transport,
    private readonly tx: TransactionLayer,
    private readonly control: ControlServer,
    private readonly cdrs: Cdrs,
  ) {
    this.log = opts.logger;
    transport.onMessage = (raw, bytes, source) => this.onNetwork(raw, bytes, source);
    transport.onFramingError = (raw, source, why) => this.onBadInput(raw, source, why);
    control.onSip = (c, id, t, b) => this.onAppSip(c, id, t, b);
    control.onProxy = (c, id, t, b) => this.onAppProxy(c, id, t, b);
    control.onClientGone = (c) => this.onAppGone(c);
    this.appRequests = {
      tx,
      log: this.log,
      local: { host: opts.host, port: opts.port },
      resolve: (uri) => this.resolve(uri),
      isLocal: (host, port) => this.isLocal(host, port),
      respond: (app, msgId, text) => control.respond(app, msgId, text),
      toApp: (app, raw, source, txnId) => this.toApp(app, raw, source, txnId, ''),
    };
  }

  stop(): void {
    for (const p of this.proxies) p.dispose();
    this.proxies.clear();
    for (const d of this.dialogs.values()) d.timers.forEach(clearTimeout);
    this.dialogs.clear();
  }

  // ---------------------------------------------------------------- network side

  private onNetwork(raw: string, bytes: number, source: Source): void {
    let msg: SipMessage;
    try {
      msg = parseMessage(raw, bytes);
    } catch (err) {
      if (err instanceof SipParseError) this.onBadInput(raw, source, err.message, err.answerable, err.status);
      else this.onBadInput(raw, source, String(err), false);
      return;
    }
    try {
      if (msg.method !== undefined) this.onRequest(msg, raw, source);
      else this.onResponse(msg, raw, source);
    } catch (err) {
      // A bug must cost one message, never the engine.
      this.log.error({ err, callId: msg.headers['call-id'] }, 'error handling sip message');
    }
  }

  /**
   * Malformed input: 400 (505 for an unknown SIP version) with a Warning saying why, when a
   * request line and a readable top Via let us answer (never to ACK); else dropped. Never the app.
   */
  private onBadInput(raw: string, source: Source, why: string, answerable = true, status: 400 | 505 = 400): void {
    const salvage = salvageForBadRequest(raw);
    const answered = answerable && !!salvage;
    const remote = `${source.protocol}:${source.address}:${source.port}`;
    this.log.warn({ remote, why, callId: salvage?.['call-id'], answered, bytes: raw.length }, 'malformed sip message');
    if (!answered || !salvage) return;
    const phrase = status === 505 ? 'Version Not Supported' : 'Bad Request';
    const res = buildResponse({ headers: salvage }, status, phrase, undefined, { warning: `399 - "${why.replace(/"/g, "'")}"` });
    if (salvage.to && !tagOf(salvage.to)) res.headers.to = `${salvage.to};tag=${Date.now().toString(36)}`;
    this.transport.send(serialize(res), source);
  }

  private isLocal(host: string, port: number | undefined): boolean {
    return (port ?? 5060) === this.opts.port && (host === this.opts.host || host === 'localhost' && this.opts.host === '127.0.0.1');
  }

  private topRouteIsUs(msg: SipMessage): boolean {
    const route = msg.headers.route;
    if (!route) return false;
    const first = splitList(route)[0];
    const t = first ? uriTarget(first) : undefined;
    return !!t && this.isLocal(t.host, t.port);
  }

  private onRequest(msg: SipMessage, raw: string, source: Source): void {
    const method = msg.method!;
    const callId = msg.headers['call-id'];

    if (method === 'ACK') {
      const stx = this.tx.findServer(serverKey(msg, 'INVITE'));
      if (stx) return this.tx.ack(stx);
      if (this.topRouteIsUs(msg)) return void this.forwardInDialog(msg, raw, source);
      const d = this.dialogs.get(`${callId}|${tagOf(msg.headers.to)}`);
      if (d) {
        d.acked = true;
        d.timers.forEach(clearTimeout);
        this.toApp(d.owner, raw, source, 'ack', d.id);
        return;
      }
      this.log.debug({ callId }, 'stray ACK dropped');
      return;
    }

    if (method === 'CANCEL') return this.onCancel(msg, raw, source);

    const key = serverKey(msg);
    const existing = this.tx.findServer(key);
    if (existing) return this.tx.retransmission(existing);

    if (tagOf(msg.headers.to)) {
      if (this.topRouteIsUs(msg)) return void this.forwardInDialog(msg, raw, source);
      const d = this.dialogs.get(`${callId}|${tagOf(msg.headers.to)}`);
      const stx = this.tx.createServer(key, msg, raw, source);
      if (d && !d.owner.closed) {
        stx.owner = d.owner;
        stx.dialogId = d.id;
        if (method === 'BYE') {
          this.cdrs.stop('network', 'normal-release', raw);
          this.forgetDialog(`${callId}|${tagOf(msg.headers.to)}`);
        }
        this.toApp(d.owner, raw, source, stx.id, d.id);
        return;
      }
      // Not a dialog we hold and not routed through us (no Record-Route): as drachtio-server does.
      this.tx.respond(stx, buildResponse(msg, 481, REASONS[481]!, stx.toTag));
      return;
    }

    // Preloaded route naming us: consume it; the app routes the request.
    if (this.topRouteIsUs(msg)) {
      const rest = splitList(msg.headers.route!).slice(1);
      if (rest.length) msg.headers.route = rest.join(',');
      else delete msg.headers.route;
    }

    const stx = this.tx.createServer(key, msg, raw, source);
    if (stx.isInvite) this.tx.respond(stx, buildResponse(msg, 100, 'Trying')); // at once, before the app
    const app = this.control.select(method.toLowerCase());
    if (stx.isInvite) this.cdrs.attempt('network', raw);
    if (!app) {
      this.log.warn({ callId, method }, 'no app routes this method: 503');
      const text = this.tx.respond(stx, buildResponse(msg, 503, REASONS[503]!, stx.toTag));
      if (text && stx.isInvite) this.cdrs.stop('application', 'call-rejected', text);
      return;
    }
    stx.owner = app;
    this.toApp(app, raw, source, stx.id, '');
  }

  private onCancel(msg: SipMessage, raw: string, source: Source): void {
    const callId = msg.headers['call-id'];
    const key = serverKey(msg);
    const again = this.tx.findServer(key);
    if (again) return this.tx.retransmission(again);
    const cancelTx = this.tx.createServer(key, msg, raw, source);
    const invite = this.tx.findServer(serverKey(msg, 'INVITE'));
    if (!invite) {
      this.tx.respond(cancelTx, buildResponse(msg, 481, REASONS[481]!, cancelTx.toTag));
      return;
    }
    this.tx.respond(cancelTx, buildResponse(msg, 200, 'OK', invite.toTag));
    if (invite.finalSent) return;
    this.log.info({ callId }, 'caller canceled');
    if (invite.proxy) return invite.proxy.cancel(msg, raw);
    const text = this.tx.respond(invite, buildResponse(invite.req, 487, REASONS[487]!, invite.toTag));
    if (text) this.cdrs.stop('application', 'call-canceled', text);
    // drachtio-srf matches the CANCEL to the pending INVITE by Call-ID and emits 'cancel' on it.
    if (invite.owner) this.toApp(invite.owner, raw, source, cancelTx.id, '');
  }

  private onResponse(msg: SipMessage, raw: string, source: Source): void {
    const via = topVia(msg.headers.via!);
    if (!via || !this.isLocal(via.host, via.port)) {
      this.log.debug({ callId: msg.headers['call-id'] }, 'response not for us dropped');
      return;
    }
    const branch = via.params.branch ?? '';
    if (this.tx.clientResponse(branch, msg, raw, source)) return;
    // A response to a request we forwarded statelessly (in-dialog): next Via gets it.
    const upstream = stripTopVia(msg);
    const next = topVia(upstream.headers.via ?? '');
    if (!next) return;
    const dest: Dest = {
      protocol: next.protocol === 'TCP' ? 'tcp' : 'udp',
      address: next.params.received ?? next.host,
      port: Number(next.params.rport) || next.port || 5060,
    };
    this.transport.send(serialize(upstream), dest);
  }

  /**
   * In-dialog request routed through us by our Record-Route: pop our Route, forward statelessly
   * (RFC 3261 16.11) to the next Route or the Request-URI. Responses find their way back by Via.
   */
  private async forwardInDialog(msg: SipMessage, raw: string, source: Source): Promise<void> {
    const callId = msg.headers['call-id'];
    const routes = splitList(msg.headers.route ?? '').slice(1);
    const isAck = msg.method === 'ACK';
    const mf = Number(msg.headers['max-forwards'] ?? '70');
    if (mf <= 0) {
      if (!isAck) this.transport.send(serialize(buildResponse(msg, 483, REASONS[483]!)), source);
      return;
    }
    const dest = await this.resolve(routes[0] ?? msg.uri ?? '');
    if (!dest) {
      this.log.warn({ callId, method: msg.method }, 'in-dialog request: next hop unresolvable');
      if (!isAck) this.transport.send(serialize(buildResponse(msg, 502, 'Bad Gateway', 'x')), source);
      return;
    }
    const vias = splitList(msg.headers.via ?? '');
    const top = vias[0] ?? '';
    const pv = parseVia(top);
    // RFC 3581: stamp where it really came from, so the response can go back statelessly.
    if (pv && (pv.host !== source.address || (pv.port ?? 5060) !== source.port)) {
      vias[0] = `${top.replace(/;\s*(received|rport)(=[^;]*)?/gi, '')};received=${source.address};rport=${source.port}`;
    }
    const branch = 'z9hG4bK' + createHash('sha1').update(`${top}|${msg.method}|${callId}`).digest('base64url').slice(0, 22);
    const { host, port } = this.opts;
    const h: Record<string, string> = {
      ...msg.headers,
      via: [`SIP/2.0/${dest.protocol.toUpperCase()} ${host}:${port};rport;branch=${branch}`, ...vias].join(','),
      'max-forwards': String(mf - 1),
    };
    if (routes.length) h.route = routes.join(',');
    else delete h.route;
    const text = serialize({ method: msg.method, uri: msg.uri, headers: h, body: msg.body });
    this.transport.send(text, dest);
    if (msg.method === 'BYE') {
      this.cdrs.stop('network', 'normal-release', raw);
      this.cdrs.stop('application', 'normal-release', text);
    }
  }

  async resolve(uri: string): Promise<Dest | undefined> {
    const t = uriTarget(uri);
    if (!t) return undefined;
    if (net.isIP(t.host)) return { protocol: t.protocol, address: t.host, port: t.port };
    let address = this.dnsCache.get(t.host);
    if (!address) {
      try {
        address = (await dns.lookup(t.host, { family: 4 })).address;
      } catch {
        return undefined;
      }
      if (this.dnsCache.size > 1000) this.dnsCache.clear();
      this.dnsCache.set(t.host, address);
    }
    return { protocol: t.protocol, address, port: t.port };
  }

  // ---------------------------------------------------------------- app side

  /** `sip|network|<bytes>|<proto>|<addr>|<port>|<time>|<txnId>|<dialogId>|<our addr>|<our port>|` */
  private toApp(app: AppClient, raw: string, source: Source, txnId: string, dialogId: string): void {
    const bytes = Buffer.byteLength(raw, 'utf8');
    app.send(
      `sip|network|${bytes}|${source.protocol}|${source.address}|${source.port}|${stackTime()}|${txnId}|${dialogId}|${this.opts.host}|${this.opts.port}|\r\n${raw}`,
    );
  }

  private onAppSip(app: AppClient, msgId: string, tokens: string[], body: string): void {
    const txnId = tokens[2] ?? '';
    const m = parseAppMessage(body);
    if (!m) return this.control.respond(app, msgId, 'NOK|unparseable sip message');
    if (m.status === undefined) {
      // In-dialog requests of the app's own dialogs (a B2BUA's BYE...) are drachtio-server's job.
      if (tokens[3]) return this.control.respond(app, msgId, 'NOK|the embedded engine does not send requests inside dialogs for apps');
      void sendAppRequest(this.appRequests, app, msgId, m, tokens[4]).catch((err: unknown) => {
        this.log.error({ err, callId: m.headers['call-id'] }, 'app request failed');
        this.control.respond(app, msgId, `NOK|${(err as Error).message}`);
      });
      return;
    }
    const stx = this.tx.serverById(txnId);
    if (!stx) return this.control.respond(app, msgId, `NOK|Unknown transaction id: ${txnId}`);
    if (stx.finalSent) return this.control.respond(app, msgId, 'NOK|final response already sent');
    const status = m.status;
    const res = buildResponse(stx.req, status, m.reason || REASONS[status] || '', stx.toTag);
    const appTo = m.headers.to;
    if (appTo && tagOf(appTo) && status > 100) res.headers.to = appTo;
    for (const name in m.headers) {
      if (!HEADERS_FROM_TRANSACTION.has(name)) res.headers[name] = m.headers[name]!;
    }
    if (stx.isInvite && status > 100 && status < 300 && !res.headers.contact) {
      const tp = stx.source.protocol === 'tcp' ? ';transport=tcp' : '';
      res.headers.contact = `<sip:${this.opts.host}:${this.opts.port}${tp}>`;
    }
    res.body = m.body;
    const text = this.tx.respond(stx, res);
    if (!text) return this.control.respond(app, msgId, 'NOK|transaction terminated');
    let dialogId = '';
    if (stx.isInvite && status >= 200) {
      if (status < 300) {
        this.cdrs.start('application', 'uas', text);
        dialogId = this.openDialog(stx, app, text);
      } else {
        this.cdrs.stop('application', 'call-rejected', text);
      }
    }
    const s = stx.source;
    this.control.respond(
      app,
      msgId,
      `OK|application|${Buffer.byteLength(text, 'utf8')}|${s.protocol}|${s.address}|${s.port}|${stackTime()}|${stx.id}|${dialogId}\r\n${text}`,
    );
  }

  /** UAS core for an app-sent 2xx: retransmit it over UDP until the ACK (RFC 3261 13.3.1.4). */
  private openDialog(stx: ServerTxn, app: AppClient, text: string): string {
    const key = `${stx.callId}|${tagOf(text.match(/\r\nTo:[^\r]*/i)?.[0]) ?? stx.toTag}`;
    const d: UasDialog = { id: `${stx.callId};uas`, owner: app, acked: false, timers: [] };
    this.dialogs.set(key, d);
    if (stx.source.protocol === 'udp') {
      const { t1, t2 } = this.tx.timers;
      let interval = t1;
      let elapsed = 0;
      const again = () => {
        if (d.acked) return;
        elapsed += interval;
        if (elapsed >= 64 * t1) {
          this.log.warn({ callId: stx.callId }, 'no ACK for 2xx');
          return;
        }
        this.transport.send(text, stx.source);
        interval = Math.min(2 * interval, t2);
        d.timers.push(setTimeout(again, interval).unref());
      };
      d.timers.push(setTimeout(again, interval).unref());
    }
    // Dialog state is bounded: forgotten after a BYE or after an hour at the latest.
    d.timers.push(setTimeout(() => this.forgetDialog(key), 3_600_000).unref());
    return d.id;
  }

  private forgetDialog(key: string): void {
    const d = this.dialogs.get(key);
    if (!d) return;
    d.timers.forEach(clearTimeout);
    this.dialogs.delete(key);
  }

  private onAppProxy(app: AppClient, msgId: string, tokens: string[], body: string): void {
    const txnId = tokens[2] ?? '';
    const stx = this.tx.serverById(txnId);
    if (!stx) return this.control.respond(app, msgId, `NOK|Unknown transaction id: ${txnId}`);
    if (stx.finalSent || stx.proxy) return this.control.respond(app, msgId, 'NOK|transaction id no longer exists');
    const callId = stx.callId;
    const mf = stx.req.headers['max-forwards'];
    if (mf !== undefined && Number(mf) <= 0) {
      this.control.respond(app, msgId, 'NOK|Rejected with 483 Too Many Hops due to Max-Forwards value of 0');
      const text = this.tx.respond(stx, buildResponse(stx.req, 483, REASONS[483]!, stx.toTag));
      if (text && stx.isInvite) this.cdrs.stop('application', 'call-rejected', text);
      return;
    }
    const targets = tokens.slice(9).filter((t) => t.length > 0);
    if (targets.length === 0) return this.control.respond(app, msgId, 'NOK|no destination');
    const extra: Record<string, string> = {};
    const m = parseAppMessage(body);
    if (m) for (const name in m.headers) if (!HEADERS_FROM_TRANSACTION.has(name)) extra[name] = m.headers[name]!;

    const core: ProxyCore = new ProxyCore(
      stx,
      {
        recordRoute: tokens[3] === 'remainInDialog',
        fullResponse: tokens[4] === 'fullResponse',
        simultaneous: tokens[6] === 'simultaneous',
        provisionalTimeout: parseTimeout(tokens[7]),
        finalTimeout: parseTimeout(tokens[8]),
        targets,
        extraHeaders: extra,
        failoverOnAnyFailure: this.opts.failoverOnAnyFailure,
      },
      {
        tx: this.tx,
        transport: this.transport,
        cdrs: this.cdrs,
        log: this.log,
        local: { host: this.opts.host, port: this.opts.port },
        resolve: (uri) => this.resolve(uri),
        toApp: (text) => this.control.respond(app, msgId, text),
        finished: () => {
          core.dispose();
          this.proxies.delete(core);
        },
      },
    );
    stx.proxy = core;
    this.proxies.add(core);
    this.log.debug({ callId, targets }, 'proxying');
    core.start();
  }

  /** The app went away: what it still owed an answer gets 503, as if no app were there. */
  private onAppGone(app: AppClient): void {
    for (const stx of this.tx.pendingFor(app)) {
      this.log.warn({ callId: stx.callId }, 'app disconnected before answering: 503');
      const text = this.tx.respond(stx, buildResponse(stx.req, 503, REASONS[503]!, stx.toTag));
      if (text && stx.isInvite) this.cdrs.stop('application', 'call-rejected', text);
    }
  }
}
