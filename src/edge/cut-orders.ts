import type { EdgeMetrics } from '../admin/metrics.js';
import type { CutOrder } from '../calls/cut-orders.js';
import type { Logger } from '../log.js';
import type { EndOutcome } from './call-ender.js';

/**
 * Carries out the controller's orders to end calls this edge process carries (src/calls/cut-orders.ts):
 * every `pollMs` it reads its order hash on the master (one HGETALL), and ends each ordered call
 * of the account the order names, with a BYE to each party. The call's end then removes its
 * record and, in the same Lua step, its order. A call ended by itself meanwhile, or carried by
 * another process, is not this process's to end: its order goes with its record.
 *
 * Never a cut on another account's evidence: an order whose account is not the call's is refused
 * and logged. A call the edge cannot end (no dialog to end it with) or whose party did not confirm
 * is said so, in a metric and a log line; the latter is tried again at the next poll.
 */

export interface CutOrderSource {
  cutOrders(): Promise<Map<string, CutOrder>>;
  accountOf(callId: string): string | undefined;
}

export interface CutOrderRunnerOptions {
  source: CutOrderSource;
  endCall(callId: string, reason: string): Promise<EndOutcome | undefined>;
  /** The Reason header of the BYEs (the out-of-credit verdict's Q.850 cause). */
  reason: () => string;
  pollMs: number;
  logger: Logger;
  metrics: Pick<EdgeMetrics, 'callsCut' | 'cutSeconds'>;
  clock?: () => number;
}

export class CutOrderRunner {
  private readonly timer: NodeJS.Timeout;
  private readonly inFlight = new Set<string>();
  /** Orders already reported as impossible (no dialog, another account's), so each is said once. */
  private readonly refused = new Set<string>();
  private polling = false;
  private readonly clock: () => number;

  constructor(private readonly o: CutOrderRunnerOptions) {
    this.clock = o.clock ?? Date.now;
    this.timer = setInterval(() => void this.poll(), o.pollMs);
    this.timer.unref();
  }

  /** One poll (the timer's, or a test's): resolves once the orders read are dealt with. */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      let orders: Map<string, CutOrder>;
      try {
        orders = await this.o.source.cutOrders();
      } catch (err) {
        this.o.logger.debug({ err: (err as Error).message }, 'cut orders not read; next poll');
        return;
      }
      await Promise.all([...orders].map(([callId, order]) => this.carryOut(callId, order)));
    } finally {
      this.polling = false;
    }
  }

  private async carryOut(callId: string, order: CutOrder): Promise<void> {
    if (this.inFlight.has(callId) || this.refused.has(callId)) return;
    const account = this.o.source.accountOf(callId);
    if (account === undefined) return; // not ours, or ended: the order goes with the record
    if (account !== order.account) {
      this.refuse(callId, 'refused', { account, orderAccount: order.account }, "CUT ORDER REFUSED: it names another account than the call's");
      return;
    }
    this.inFlight.add(callId);
    try {
      const outcome = await this.o.endCall(callId, this.o.reason());
      const line = { callId, account, controller: order.controller, decidedAt: order.decidedAt };
      if (!outcome) {
        this.refuse(callId, 'not-endable', line, 'cut order for a call the edge cannot end (no dialog to send a BYE in): it runs on');
      } else if (outcome.ended) {
        const seconds = (this.clock() - order.decidedAt) / 1000;
        this.o.metrics.callsCut.inc({ outcome: 'ended' });
        this.o.metrics.cutSeconds.observe(Math.max(0, seconds));
        this.o.logger.info({ ...line, caller: outcome.caller, callee: outcome.callee, ms: Math.round(seconds * 1000) }, 'call cut: account out of credit');
      } else {
        this.o.metrics.callsCut.inc({ outcome: 'not-ended' });
        this.o.logger.warn({ ...line, caller: outcome.caller, callee: outcome.callee }, 'call cut not confirmed by both parties: tried again at the next poll');
      }
    } finally {
      this.inFlight.delete(callId);
    }
  }

  private refuse(callId: string, outcome: 'refused' | 'not-endable', fields: Record<string, unknown>, msg: string): void {
    if (this.refused.size > 10_000) this.refused.clear();
    this.refused.add(callId);
    this.o.metrics.callsCut.inc({ outcome });
    this.o.logger.error({ callId, ...fields, alert: true }, msg);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
