import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { EdgeMetrics } from '../../src/admin/metrics.js';
import type { CutOrder } from '../../src/calls/cut-orders.js';
import { encodeCutOrder, parseCutOrder } from '../../src/calls/cut-orders.js';
import type { EndOutcome } from '../../src/edge/call-ender.js';
import { CutOrderRunner } from '../../src/edge/cut-orders.js';
import { silentLogger } from '../../src/log.js';

/**
 * What the edge does with the controller's orders (src/edge/cut-orders.ts), over a stand-in for
 * the order hash and the call ender (the real ones: test/e2e/call-cut.test.ts).
 */

const order = (account: string): CutOrder => ({ account, decidedAt: 1_000, controller: 'ctl' });

function runner(o: { orders: Record<string, CutOrder>; carried: Record<string, string>; outcome?: (callId: string) => EndOutcome | undefined }) {
  const ended: string[] = [];
  const metrics = new EdgeMetrics({ registry: new Registry() });
  const r = new CutOrderRunner({
    source: { cutOrders: async () => new Map(Object.entries(o.orders)), accountOf: (callId) => o.carried[callId] },
    endCall: async (callId) => {
      ended.push(callId);
      return (o.outcome ?? (() => ({ callee: 'ended', caller: 'ended', ended: true })))(callId);
    },
    reason: () => 'Q.850;cause=52',
    pollMs: 60_000,
    logger: silentLogger,
    metrics,
    clock: () => 2_500,
  });
  const count = async (outcome: string) => (await metrics.callsCut.get()).values.find((v) => v.labels.outcome === outcome)?.value ?? 0;
  return { r, ended, metrics, count };
}

describe('the edge carrying out cut orders', () => {
  it('ends each ordered call it carries for the account the order names, and measures from the decision', async () => {
    const { r, ended, metrics, count } = runner({ orders: { c1: order('acct-1'), c2: order('acct-2') }, carried: { c1: 'acct-1', c2: 'acct-2' } });
    await r.poll();
    r.stop();
    expect(ended.sort()).toEqual(['c1', 'c2']);
    expect(await count('ended')).toBe(2);
    expect((await metrics.cutSeconds.get()).values.find((v) => v.metricName === 'credit_edge_cut_seconds_sum')?.value).toBe(3); // 1.5 s each
  });

  it('never on another account\'s evidence: an order whose account is not the call\'s is refused, once', async () => {
    const { r, ended, count } = runner({ orders: { c1: order('acct-other') }, carried: { c1: 'acct-1' } });
    await r.poll();
    await r.poll();
    r.stop();
    expect(ended).toEqual([]);
    expect(await count('refused')).toBe(1);
  });

  it('a call it does not carry (ended, or another process\'s) is left alone: the order goes with the record', async () => {
    const { r, ended } = runner({ orders: { gone: order('acct-1') }, carried: {} });
    await r.poll();
    r.stop();
    expect(ended).toEqual([]);
  });

  it('a party that did not confirm: tried again at the next poll; a call with no dialog: said once, not retried', async () => {
    const { r, ended, count } = runner({
      orders: { stuck: order('acct-1'), nodialog: order('acct-1') },
      carried: { stuck: 'acct-1', nodialog: 'acct-1' },
      outcome: (callId) => (callId === 'stuck' ? { callee: 'failed', caller: 'ended', ended: false } : undefined),
    });
    await r.poll();
    await r.poll();
    r.stop();
    expect(ended.filter((c) => c === 'stuck')).toHaveLength(2);
    expect(ended.filter((c) => c === 'nodialog')).toHaveLength(1);
    expect(await count('not-ended')).toBe(2);
    expect(await count('not-endable')).toBe(1);
  });
});

describe('the order as stored', () => {
  it('reads back what was written; anything else is not an order', () => {
    expect(parseCutOrder(encodeCutOrder(order('acct-1')))).toEqual(order('acct-1'));
    for (const raw of ['', 'nope', '{}', '{"account":"","decidedAt":1,"controller":"c"}', '{"account":"a","decidedAt":"soon","controller":"c"}']) expect(parseCutOrder(raw), raw).toBeUndefined();
  });
});
