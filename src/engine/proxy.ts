import type { Logger } from '../log.js';
import type { Cdrs } from './cdr.js';
import type { Source, Transport } from './transport.js';
import type { ClientTxn, Dest, ServerTxn, TransactionLayer } from './transactions.js';
import { buildResponse, newBranch, REASONS, serialize, splitList, stackTime, type SipMessage } from './sip.js';

/**
 * Stateful proxy core for one request the app handed to srf.proxyRequest (RFC 3261 16): one
 * client transaction per target, serial (default) or simultaneous. Provisionals (except 100) and
 * 2xx go upstream at once; failures are collected, and the next target is tried on 5xx, 408 and
 * timeouts; when the search ends the best final goes upstream (16.7.6). Each final is also
 * reported to the app as drachtio-server does: `OK|network|...|continue` + response, then
 * `OK|done`.
 */

export interface ProxyOptions {
  recordRoute: boolean;
  fullResponse: boolean;
  simultaneous: boolean;
  /** ms without any response from a target before moving on; 0 = none. */
  provisionalTimeout: number;
  /** ms without a final response from a target before moving on; 0 = Timer C. */
  finalTimeout: number;
  targets: string[];
  extraHeaders: Record<string, string>;
  /** drachtio-server fails over on any non-2xx final; the default here is 5xx/408/timeout only. */
  failoverOnAnyFailure: boolean;
}

export interface ProxyDeps {
  tx: TransactionLayer;
  transport: Transport;
  cdrs: Cdrs;
  log: Logger;
  local: { host: string; port: number };
  resolve(uri: string): Promise<Dest | undefined>;
  /** Sends one answer line to the app that asked for the proxy. */
  toApp(text: string): void;
  /** Called once the proxy has nothing left to do. */
  finished(): void;
}

interface Target {
  uri: string;
  state: 'pending' | 'active' | 'done';
  ctx?: ClientTxn;
  status: number;
  final?: SipMessage;
  /** We gave up on it before any provisional: CANCEL if one arrives later. */
  abandoned: boolean;
  cancelSent: boolean;
  timers: NodeJS.Timeout[];
}

export function parseTimeout(s: string | undefined): number {
  const m = /^(\d+)(ms|s)$/.exec((s ?? '').trim());
  if (!m) return 0;
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

export class ProxyCore {
  private readonly targets: Target[];
  private searching = true;
  private doneSent = false;
  private readonly isInvite: boolean;
  private readonly callId: string;

  constructor(
    private readonly stx: ServerTxn,
    private readonly opts: ProxyOptions,
    private readonly deps: ProxyDeps,
  ) {
    this.isInvite = stx.isInvite;
    this.callId = stx.callId;
    this.targets = opts.targets.map((uri) => ({ uri, state: 'pending', status: 0, abandoned: false, cancelSent: false, timers: [] }));
  }

  start(): void {
    if (!this.opts.fullResponse) this.sendDone();
    void this.startNext();
  }

  /** The caller sent CANCEL: 487 upstream now, CANCEL every branch still ringing (RFC 3261 16.10). */
  cancel(): void {
    if (!this.searching) return;
    this.searching = false;
    const res = buildResponse(this.stx.req, 487, REASONS[487]!, this.stx.toTag);
    const text = this.deps.tx.respond(this.stx, res);
    if (text && this.isInvite) this.deps.cdrs.stop('application', 'call-canceled', text);
    for (const t of this.targets) this.giveUp(t, true);
    this.maybeDone();
  }

  private async startNext(): Promise<void> {
    while (this.searching) {
      const t = this.targets.find((x) => x.state === 'pending');
      if (!t) break;
      t.state = 'active';
      const ok = await this.send(t);
      if (ok && !this.opts.simultaneous) return;
    }
    this.maybeFinish();
  }

  private async send(t: Target): Promise<boolean> {
    const dest = await this.deps.resolve(t.uri);
    if (!dest || !this.searching) {
      if (!dest) this.deps.log.warn({ callId: this.callId, target: t.uri }, 'proxy target unresolvable');
      t.state = 'done';
      t.status = 503; // RFC 3261 16.9: a target we cannot reach counts as 503
      return false;
    }
    const req = this.stx.req;
    const branch = newBranch();
    const { host, port } = this.deps.local;
    const h: Record<string, string> = {};
    h.via = `SIP/2.0/${dest.protocol.toUpperCase()} ${host}:${port};rport;branch=${branch},${req.headers.via}`;
    if (this.opts.recordRoute) {
      const tp = dest.protocol === 'tcp' && this.stx.source.protocol === 'tcp' ? ';transport=tcp' : '';
      const rr = `<sip:${host}:${port};lr${tp}>`;
      h['record-route'] = req.headers['record-route'] ? `${rr},${req.headers['record-route']}` : rr;
    }
    const mf = Number(req.headers['max-forwards'] ?? '71');
    for (const name in req.headers) if (!(name in h)) h[name] = req.headers[name]!;
    h['max-forwards'] = String(Number.isFinite(mf) ? mf - 1 : 70);
    Object.assign(h, this.opts.extraHeaders);
    const fwd: SipMessage = { method: req.method, uri: stripAngles(t.uri), headers: h, body: req.body };

    t.ctx = this.deps.tx.startClient(branch, fwd, dest, {
      onResponse: (res, raw, source) => this.onResponse(t, res, raw, source),
      onTimeout: () => this.onTargetTimeout(t, 'no response (Timer B/F)'),
    });
    if (this.isInvite) this.deps.cdrs.attempt('application', t.ctx.text);
    if (this.opts.provisionalTimeout > 0) {
      this.timer(t, this.opts.provisionalTimeout, () => {
        if (t.state === 'active' && t.ctx?.state === 'calling') this.onTargetTimeout(t, 'provisional timeout');
      });
    }
    const finalMs = this.opts.finalTimeout > 0 ? this.opts.finalTimeout : this.deps.tx.timers.timerC;
    if (this.isInvite) {
      this.timer(t, finalMs, () => {
        if (t.state === 'active') this.onTargetTimeout(t, 'final timeout');
      });
    }
    return true;
  }

  private onResponse(t: Target, res: SipMessage, raw: string, source: Source): void {
    const status = res.status ?? 0;
    const log = this.deps.log;
    if (t.state === 'done') {
      // The winning branch retransmits its 2xx until the caller's ACK: relay each one (RFC 6026).
      if (status >= 200 && status < 300 && t.status >= 200 && t.status < 300) {
        this.deps.transport.send(serialize(stripTopVia(res)), this.stx.source);
        return;
      }
      // A branch we gave up on: CANCEL it once it rings; a late 2xx is not forwarded.
      if (status < 200 && status > 100 && t.abandoned && t.ctx) this.cancelOnce(t);
      else if (status >= 200 && status < 300) {
        log.warn({ callId: this.callId, target: t.uri, status }, 'late 2xx from an abandoned target dropped');
      }
      return;
    }
    if (status === 100) return; // a stateful proxy does not forward 100 (we sent our own)
    const upstream = stripTopVia(res);
    if (status < 200) {
      if (this.searching) this.deps.tx.respond(this.stx, upstream);
      return;
    }
    this.clearTimers(t);
    t.state = 'done';
    t.status = status;
    if (this.isInvite) {
      if (status < 300) this.deps.cdrs.start('network', 'proxy-uac', raw);
      else this.deps.cdrs.stop('network', status === 487 ? 'call-canceled' : 'call-rejected', raw);
    }
    this.reportToApp(raw, source);

    if (status < 300) {
      // Success ends the search: forward (and keep forwarding retransmissions), cancel the rest.
      if (this.stx.finalSent) {
        this.deps.transport.send(serialize(upstream), this.stx.source);
      } else {
        const text = this.deps.tx.respond(this.stx, upstream);
        if (text && this.isInvite) this.deps.cdrs.start('application', 'proxy-uas', text);
      }
      this.searching = false;
      for (const other of this.targets) if (other !== t) this.giveUp(other);
      this.sendDone();
      this.scheduleFinished();
      return;
    }
    t.final = res;
    if (this.searching) {
      const failover = this.opts.failoverOnAnyFailure || status === 408 || (status >= 500 && status < 600);
      if (failover) {
        void this.startNext();
        return;
      }
      if (!this.opts.simultaneous) {
        this.searching = false;
        this.forwardBest();
        return;
      }
    }
    this.maybeFinish();
  }

  private onTargetTimeout(t: Target, why: string): void {
    if (t.state !== 'active') return;
    this.deps.log.info({ callId: this.callId, target: t.uri, why }, 'proxy target timed out');
    this.giveUp(t);
    t.state = 'done';
    t.status = 408;
    if (this.searching) void this.startNext();
    else this.maybeDone();
  }

  /**
   * Stops waiting on a target: CANCEL it if it is ringing (with keepWaiting its final, normally
   * 487, is still awaited and reported to the app), otherwise remember to CANCEL it if it rings.
   */
  private giveUp(t: Target, keepWaiting = false): void {
    if (t.state === 'pending') {
      t.state = 'done';
      return;
    }
    if (t.state !== 'active') return;
    if (t.ctx?.isInvite && t.ctx.state === 'proceeding') {
      this.cancelOnce(t);
      if (keepWaiting) return;
    } else if (t.ctx?.isInvite && t.ctx.state === 'calling') {
      t.abandoned = true;
    }
    this.clearTimers(t);
    t.state = 'done';
  }

  private cancelOnce(t: Target): void {
    t.abandoned = false;
    if (!t.ctx || t.cancelSent) return;
    t.cancelSent = true;
    this.deps.tx.cancelClient(t.ctx);
  }

  /** Search over without a success: if nothing is active any more, send the best final. */
  private maybeFinish(): void {
    if (!this.searching) return this.maybeDone();
    if (this.targets.some((t) => t.state === 'active' || t.state === 'pending')) return;
    this.searching = false;
    this.forwardBest();
  }

  private forwardBest(): void {
    for (const t of this.targets) this.giveUp(t);
    const candidates = this.targets.filter((t) => t.status >= 300);
    candidates.sort((a, b) => rank(a.status) - rank(b.status));
    const best = candidates[0];
    let text: string | undefined;
    let status: number;
    if (best?.final) {
      status = best.status;
      text = this.deps.tx.respond(this.stx, stripTopVia(best.final));
    } else {
      status = best?.status ?? 408;
      text = this.deps.tx.respond(this.stx, buildResponse(this.stx.req, status, REASONS[status] ?? 'Request Timeout', this.stx.toTag));
    }
    if (text && this.isInvite) this.deps.cdrs.stop('application', status === 487 ? 'call-canceled' : 'call-rejected', text);
    this.sendDone();
    this.scheduleFinished();
  }

  private maybeDone(): void {
    if (this.targets.every((t) => t.state === 'done')) {
      this.sendDone();
      this.scheduleFinished();
    }
  }

  private reportToApp(raw: string, source: Source): void {
    if (!this.opts.fullResponse) return;
    const bytes = Buffer.byteLength(raw, 'utf8');
    this.deps.toApp(`OK|network|${bytes}|${source.protocol}|${source.address}|${source.port}|${stackTime()}|||continue\r\n${raw}`);
  }

  private sendDone(): void {
    if (this.doneSent) return;
    this.doneSent = true;
    this.deps.toApp('OK|done');
  }

  private finishedScheduled = false;
  private scheduleFinished(): void {
    if (this.finishedScheduled) return;
    this.finishedScheduled = true;
    // Client transactions live on in the transaction layer (2xx/final retransmissions); the core
    // itself is only needed while a CANCEL can still arrive.
    const t = setTimeout(() => this.deps.finished(), 64 * this.deps.tx.timers.t1);
    t.unref();
  }

  private timer(t: Target, ms: number, fn: () => void): void {
    const h = setTimeout(fn, ms);
    h.unref();
    t.timers.push(h);
  }

  private clearTimers(t: Target): void {
    for (const h of t.timers) clearTimeout(h);
    t.timers = [];
  }

  /** For engine shutdown. */
  dispose(): void {
    for (const t of this.targets) this.clearTimers(t);
  }
}

/** RFC 3261 16.7.6 preference among failures: 6xx, then auth/extension 4xx, other 4xx, 5xx, 3xx. */
function rank(status: number): number {
  if (status >= 600) return 0;
  if ([401, 407, 415, 420, 484].includes(status)) return 1;
  if (status >= 400 && status < 500) return 2;
  if (status >= 500) return 3;
  return 4;
}

function stripAngles(uri: string): string {
  const u = uri.trim();
  return u.startsWith('<') && u.endsWith('>') ? u.slice(1, -1) : u;
}

/** The response as it goes upstream: our Via removed. */
export function stripTopVia(res: SipMessage): SipMessage {
  const vias = splitList(res.headers.via ?? '');
  vias.shift();
  return { ...res, headers: { ...res.headers, via: vias.join(',') } };
}
