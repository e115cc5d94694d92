import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCallPath, type CallPath } from '../../src/dev/call-path.js';
import { freePortAhead } from '../../src/dev/ports.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { startEngine, type Engine } from '../../src/engine/index.js';
import { silentLogger } from '../../src/log.js';
import { assertSippRan, finalsReceived } from '../helpers/edge-under-test.js';
import { until } from '../helpers/controller.js';
import { runSipp, startSipp, stopAllSipp } from '../helpers/sipp.js';
import { callsKey } from '../../src/redis/keys.js';

/**
 * The edge survives its SIP server restarting under it: it reconnects with backoff and the next
 * call is routed. (Always the embedded engine: the test restarts it, which it cannot do to an
 * external drachtio-server.)
 */

let topology: Topology;
let engine: Engine | undefined;
let path: CallPath;
const secret = randomBytes(8).toString('hex');
let sipPort: number;
let controlPort: number;

const start = () => startEngine({ sip: { host: '127.0.0.1', port: sipPort }, control: { host: '127.0.0.1', port: controlPort, secret }, logger: silentLogger });
const call = () => runSipp({ scenario: 'edge-uac', vars: { HOLD: '50' }, remote: `127.0.0.1:${sipPort}`, injection: [['acct-ok']], service: 'callee' });

beforeAll(async () => {
  topology = await startTopology({ replicas: 1, sentinels: 0 });
  await topology.seedFile('config/demo-accounts.yaml');
  [sipPort, controlPort] = [await freePortAhead({ udp: true }), await freePortAhead()];
  engine = await start();
  path = await startCallPath({ topology, logger: silentLogger, external: { control: { host: '127.0.0.1', port: controlPort, secret }, sipTarget: `127.0.0.1:${sipPort}` } });
});
afterAll(async () => {
  await path?.stop();
  await engine?.stop();
  await topology?.stop();
  await stopAllSipp();
});

describe('SIP server restart', () => {
  it('the edge reconnects and routes the next call', async () => {
    assertSippRan(await call(), 'before the restart');
    await engine!.stop();
    engine = undefined;
    // Let the edge notice and start backing off before the server returns.
    for (let i = 0; i < 100 && path.edge.ready(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(path.edge.ready()).toBe(false);
    engine = await start();
    for (let i = 0; i < 250 && !path.edge.ready(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(path.edge.ready()).toBe(true);
    const r = await call();
    assertSippRan(r, 'after the restart');
    expect(finalsReceived(r).map((m) => m.status)).toEqual([200]);
  }, 30_000);
});

describe('SIP server restart under a call in progress', () => {
  let t2: Topology;
  let engine2: Engine | undefined;
  let path2: CallPath;
  let sip2: number;
  let control2: number;
  const start2 = () => startEngine({ sip: { host: '127.0.0.1', port: sip2 }, control: { host: '127.0.0.1', port: control2, secret }, logger: silentLogger });

  beforeAll(async () => {
    t2 = await startTopology({ replicas: 1, sentinels: 1 });
    await t2.seed({ 'acct-one-channel': { enabled: true, balance: 100, rate: 0.01, max_channels: 1 } });
    [sip2, control2] = [await freePortAhead({ udp: true }), await freePortAhead()];
    engine2 = await start2();
    path2 = await startCallPath({ topology: t2, logger: silentLogger, external: { control: { host: '127.0.0.1', port: control2, secret }, sipTarget: `127.0.0.1:${sip2}` } });
  });
  afterAll(async () => {
    await path2?.stop();
    await engine2?.stop();
    await t2?.stop();
  });

  it("its end can no longer be seen: the edge ends it in its records and frees its channel, so a funded account is neither charged on nor refused", async () => {
    const long = startSipp({ scenario: 'edge-uac', vars: { HOLD: '6000' }, remote: `127.0.0.1:${sip2}`, injection: [['acct-one-channel']], service: 'callee', calls: 1, timeoutMs: 30_000 });
    const master = t2.master.client;
    await until('the call recorded', 5000, async () => (await master.hlen(callsKey('acct-one-channel'))) === 1);
    await engine2!.stop();
    engine2 = undefined;
    for (let i = 0; i < 100 && path2.edge.ready(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(path2.edge.ready()).toBe(false);
    engine2 = await start2();
    for (let i = 0; i < 250 && !path2.edge.ready(); i++) await new Promise((r) => setTimeout(r, 20));
    expect(path2.edge.ready()).toBe(true);
    await until('the record ended', 5000, async () => (await master.hlen(callsKey('acct-one-channel'))) === 0);
    // Its one channel is free again: the next call is routed, not refused "Channel Limit Reached".
    const next = await runSipp({ scenario: 'edge-uac', vars: { HOLD: '50' }, remote: `127.0.0.1:${sip2}`, injection: [['acct-one-channel']], service: 'callee' });
    assertSippRan(next, 'after the restart');
    expect(finalsReceived(next).map((m) => `${m.status} ${m.headers.reason?.[0] ?? ''}`)).toEqual(['200 ']);
    await (await long).done;
  }, 40_000);
});
