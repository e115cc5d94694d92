import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCallPath, type CallPath } from '../../src/dev/call-path.js';
import { freePort } from '../../src/dev/ports.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { startEngine, type Engine } from '../../src/engine/index.js';
import { silentLogger } from '../../src/log.js';
import { assertSippRan, finalsReceived } from '../helpers/edge-under-test.js';
import { runSipp, stopAllSipp } from '../helpers/sipp.js';

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
  [sipPort, controlPort] = [await freePort({ udp: true }), await freePort()];
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
