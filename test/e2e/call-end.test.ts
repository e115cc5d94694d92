import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCallPath, type CallPath } from '../../src/dev/call-path.js';
import { freePortAhead } from '../../src/dev/ports.js';
import { startListeningSipp } from '../../src/dev/sipp.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { silentLogger } from '../../src/log.js';
import { callsKey } from '../../src/redis/keys.js';
import { until } from '../helpers/controller.js';
import { assertSippRan, finalsReceived } from '../helpers/edge-under-test.js';
import { engineUnderTest, type EngineUnderTest } from '../helpers/engine-under-test.js';
import { startSipp, stopAllSipp, type SippProcess, type SippResult } from '../helpers/sipp.js';

/**
 * The edge ends a call it proxied, from the middle: a BYE to each party, with the Reason given,
 * answered by real SIPp peers on both sides, through the SIP server under test (the embedded
 * engine, or drachtio-server when DRACHTIO_* name one). src/edge/call-ender.ts says how.
 */

const REASON = 'Q.850;cause=16;text="ended by test"';
let topology: Topology;
let engine: EngineUnderTest;
let path: CallPath;
let carrier: SippProcess | undefined;
/** Where the edge routes calls: each test starts its own carrier there. */
let carrierPort: number;

beforeAll(async () => {
  topology = await startTopology({ replicas: 1, sentinels: 1 });
  await topology.seedFile('config/demo-accounts.yaml');
  // A short T1: a BYE nobody answers times out (Timer F, 64 x T1) within the test on the engine.
  engine = await engineUnderTest({ t1: 100 });
  carrierPort = await freePortAhead({ udp: true });
  path = await startCallPath({
    topology,
    logger: silentLogger,
    external: { control: engine.control, sipTarget: engine.sipTarget },
    carrier: false,
    config: (generated) => ({ ...generated, routes: { default: [`sip:127.0.0.1:${carrierPort}`] } }),
  });
});
afterEach(async () => {
  await carrier?.stop();
  carrier = undefined;
  await stopAllSipp();
});
afterAll(async () => {
  await path?.stop();
  await engine?.stop();
  await topology?.stop();
});

function carrierOn(scenario: string): Promise<SippProcess> {
  return startListeningSipp({ scenario, port: carrierPort, calls: 1, timeoutMs: 30_000 });
}

/** A caller that waits up to `holdMs` for the network's BYE; resolves once the call is answered. */
async function answeredCall(account: string, holdMs: number): Promise<{ caller: SippProcess; callId: string }> {
  const before = new Set(await topology.master.client.hkeys(callsKey(account)));
  const caller = await startSipp({ scenario: 'edge-uac-until-bye', vars: { HOLD: String(holdMs) }, remote: path.sipTarget, injection: [[account]], service: 'callee', timeoutMs: holdMs + 20_000 });
  let callId = '';
  await until('the call answered and recorded', 5000, async () => {
    callId = (await topology.master.client.hkeys(callsKey(account))).find((id) => !before.has(id)) ?? '';
    return callId !== '';
  });
  return { caller, callId };
}

const byesReceived = (r: SippResult) => r.messages.filter((m) => m.direction === 'received' && m.method === 'BYE');
const endingByes = async (outcome: string) =>
  (await path.edge.metrics.registry.getSingleMetric('credit_edge_ending_byes_total')!.get()).values.filter((v) => v.labels.outcome === outcome).reduce((n, v) => n + v.value, 0);

describe('the edge ends a call it carried', () => {
  it('a BYE to each party with the Reason given; both answer 200; the call ends here and in the records', async () => {
    carrier = await carrierOn('uas-answer');
    const started = Date.now();
    const { caller, callId } = await answeredCall('acct-ok', 15_000);

    const outcome = await path.edge.app.endCall(callId, REASON);
    expect(outcome).toEqual({ callee: 'ended', caller: 'ended', ended: true });

    const result = await caller.done;
    assertSippRan(result, 'caller ended by the network');
    expect(Date.now() - started).toBeLessThan(10_000); // well before its own 15 s hang-up
    expect(finalsReceived(result).map((m) => m.status)).toEqual([200]);
    const [bye] = byesReceived(result);
    expect(bye, 'the caller got a BYE').toBeDefined();
    expect(bye!.headers['call-id']).toEqual([callId]);
    expect(bye!.headers.reason).toEqual([REASON]);
    // The caller never sent a BYE of its own: the network ended the call.
    expect(result.messages.some((m) => m.direction === 'sent' && m.method === 'BYE')).toBe(false);
    assertSippRan(await carrier.done, 'carrier took the BYE');

    await until('record removed on the master', 3000, async () => (await topology.master.client.hlen(callsKey('acct-ok'))) === 0);
    expect(path.edge.calls.count('acct-ok')).toBe(0);
    expect(await path.edge.app.endCall(callId, REASON), 'an ended call is not ended twice').toBeUndefined();
  }, 30_000);

  it('a call that ended by itself is no longer the edge\'s to end', async () => {
    carrier = await carrierOn('uas-answer');
    const { caller, callId } = await answeredCall('acct-ok', 300);
    assertSippRan(await caller.done, 'caller hung up');
    await until('call ended on the edge', 3000, async () => path.edge.calls.count('acct-ok') === 0);
    expect(await path.edge.app.endCall(callId, REASON)).toBeUndefined();
  }, 30_000);

  it('a party that never answers the BYE: said so, counted, and the call is kept (not reported ended)', async () => {
    carrier = await carrierOn('uas-answer');
    const { caller, callId } = await answeredCall('acct-ok', 30_000);
    // The carrier goes away after answering: its side of the BYE gets no answer.
    await carrier.stop();
    const failedBefore = await endingByes('failed');

    const outcome = await path.edge.app.endCall(callId, REASON);
    expect(outcome).toEqual({ callee: 'failed', caller: 'ended', ended: false });
    expect(await endingByes('failed')).toBe(failedBefore + 1);
    assertSippRan(await caller.done, 'the caller took its BYE');
    // Not confirmed by both: still recorded and counted, so it is still charged and can be ended again.
    expect(await topology.master.client.hexists(callsKey('acct-ok'), callId)).toBe(1);
    expect(path.edge.calls.count('acct-ok')).toBe(1);
  }, 60_000);
});
