import type { ControlServer } from './control.js';
import { stackTime } from './sip.js';

/**
 * CDR events, as drachtio-server sends them when started with CDRs on: one frame per event to one
 * app subscribed to that event (`srf.on('cdr:attempt', ...)` registers the route "cdr:attempt"):
 *   cdr:attempt|<source>|<time>            + CRLF + SIP message
 *   cdr:start|<source>|<time>|<role>       + CRLF + SIP message
 *   cdr:stop|<source>|<time>|<reason>      + CRLF + SIP message
 * source is "network" (the message was received) or "application" (we sent it).
 */

export type CdrSource = 'network' | 'application';
export type CdrRole = 'proxy-uac' | 'proxy-uas' | 'uac' | 'uas';
export type CdrStopReason = 'call-rejected' | 'call-canceled' | 'normal-release' | 'system-error-initiated-termination';

export class Cdrs {
  constructor(
    private readonly control: ControlServer,
    readonly enabled: boolean,
  ) {}

  attempt(source: CdrSource, sipText: string): void {
    this.post('cdr:attempt', `${source}|${stackTime()}`, sipText);
  }

  start(source: CdrSource, role: CdrRole, sipText: string): void {
    this.post('cdr:start', `${source}|${stackTime()}|${role}`, sipText);
  }

  stop(source: CdrSource, reason: CdrStopReason, sipText: string): void {
    this.post('cdr:stop', `${source}|${stackTime()}|${reason}`, sipText);
  }

  private post(event: string, meta: string, sipText: string): void {
    if (!this.enabled) return;
    const app = this.control.select(event);
    if (app) app.send(`${event}|${meta}\r\n${sipText}`);
  }
}
