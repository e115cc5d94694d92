import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCallRecord } from '../../src/calls/records.js';
import { readAudit } from '../../src/control/audit.js';
import type { RunningController } from '../../src/control/start.js';
import { callsKey } from '../../src/redis/keys.js';
import { controllerOn, until } from '../helpers/controller.js';
import { assertSippRan, edgeUnderTest, finalsReceived, type EdgeUnderTest } from '../helpers/edge-under-test.js';
import { runSipp, startSipp, stopAllSipp, type SippResult } from '../helpers/sipp.js';

/**
 * Calls ended when their credit runs out, over the whole path: SIPp callers and carrier, the edge
 * recording calls on the master, the controller (controller.cut_calls on, a 500 ms grace) ordering
 * the calls of an account out of credit ended, and the edge ending them with a BYE to each party.
 */

let edge: EdgeUnderTest;
let controller: RunningController;
const GRACE_MS = 500;

beforeAll(async () => {
  edge = await edgeUnderTest({
    sentinels: 3,
    // 6 per minute = 0.1 per second: 0.05 lasts a call half a second.
    seed: { 'acct-short': { enabled: true, balance: 0.05, rate: 6, max_channels: 10 } },
  });
  controller = controllerOn(edge.topology, 'ctl-cut', { wait_replicas: 0, cut_calls: { enabled: true, grace_ms: GRACE_MS } });
  await until('controller acting', 10_000, async () => controller.controller.isLeader);
}, 60_000);
afterAll(async () => {
  await controller?.stop();
  await edge?.stop();
  await stopAllSipp();
});

const master = async () => edge.topology.nodeAt(await edge.topology.currentMaster())!.client;
const byeReceived = (r: SippResult) => r.messages.find((m) => m.direction === 'received' && m.method === 'BYE');
const byeSent = (r: SippResult) => r.messages.some((m) => m.direction === 'sent' && m.method === 'BYE');

describe('a call past its credit', () => {
  it('is ended within 2 s of running dry, with a BYE to both parties and an audit entry; a funded call beside it is not touched', async () => {
    const client = await master();
    const short = await startSipp({ scenario: 'edge-uac-until-bye', vars: { HOLD: '20000' }, remote: edge.path.sipTarget, injection: [['acct-short']], service: 'callee', timeoutMs: 40_000 });
    const funded = await startSipp({ scenario: 'edge-uac-until-bye', vars: { HOLD: '4000' }, remote: edge.path.sipTarget, injection: [['acct-ok']], service: 'callee', timeoutMs: 40_000 });
    const [callId, raw] = await until('the short call recorded', 5000, async () => Object.entries(await client.hgetall(callsKey('acct-short')))[0]);
    const answeredAt = parseCallRecord(raw)!.start;
    const ranDryAt = answeredAt + 500;

    await until('the short call ended', 5000, async () => (await client.hlen(callsKey('acct-short'))) === 0);
    const endedAt = Date.now();
    expect(endedAt - ranDryAt, 'cut within 2 s of the credit running out').toBeLessThan(2000);

    const cut = await short.done;
    assertSippRan(cut, 'the short call');
    expect(finalsReceived(cut).map((m) => m.status)).toEqual([200]);
    expect(byeReceived(cut)?.headers.reason).toEqual(['Q.850;cause=52;text="out of call credit"']);
    expect(byeSent(cut), 'the caller did not hang up itself').toBe(false);

    // The overdraft is at most rate x 2 s: 0.1 per second.
    const balance = Number(await client.hget('account:acct-short', 'balance'));
    expect(balance).toBeLessThan(0.05);
    expect(balance).toBeGreaterThan(-0.2);
    const audit = (await readAudit(client, { account: 'acct-short', limit: 20 })).filter((e) => e.action === 'cut');
    expect(audit.map((e) => JSON.parse(e.evidence).callId)).toEqual([callId]);
    expect(audit[0]!.controller).toBe('ctl-cut');
    const cuts = (await edge.path.edge.metrics.registry.getSingleMetric('credit_edge_calls_cut_total')!.get()).values;
    expect(cuts.find((v) => v.labels.outcome === 'ended')?.value).toBe(1);

    const untouched = await funded.done;
    assertSippRan(untouched, 'the funded call');
    expect(byeReceived(untouched), 'no BYE from the network for the funded call').toBeUndefined();
    expect(byeSent(untouched), 'the funded caller hung up itself').toBe(true);
  }, 60_000);

  it('on an edge draining to stop, new calls get the shutting-down 503 and the call in progress is still cut when its credit runs out; then it has drained', async () => {
    const client = await master();
    await client.hset('account:acct-short', 'balance', '0.05', 'credit_blocked', '0');
    await until('unblocked', 5000, async () => (await client.hget('account:acct-short', 'credit_blocked')) === '0');
    const running = await startSipp({ scenario: 'edge-uac-until-bye', vars: { HOLD: '20000' }, remote: edge.path.sipTarget, injection: [['acct-short']], service: 'callee', timeoutMs: 40_000 });
    await until('the call recorded', 5000, async () => (await client.hlen(callsKey('acct-short'))) === 1);

    const drained = edge.path.edge.drain(30_000);
    expect(edge.path.edge.ready(), '/readyz says not ready while draining').toBe(false);
    const refused = await runSipp({ scenario: 'edge-uac', vars: { HOLD: '0' }, remote: edge.path.sipTarget, injection: [['acct-ok']], service: 'callee', timeoutMs: 10_000 });
    const [answer] = finalsReceived(refused);
    expect(answer?.status).toBe(503);
    expect(answer?.headers['retry-after']).toEqual(['30']);
    expect(answer?.headers.reason).toEqual(['Q.850;cause=41;text="edge shutting down"']);

    // Still recorded and cut while draining: the drain ends when the call does, well before its 20 s.
    const started = Date.now();
    expect(await drained).toEqual({ left: 0 });
    expect(Date.now() - started).toBeLessThan(5000);
    const cut = await running.done;
    assertSippRan(cut, 'the draining call');
    expect(byeReceived(cut)?.headers.reason).toEqual(['Q.850;cause=52;text="out of call credit"']);
  }, 60_000);
});
