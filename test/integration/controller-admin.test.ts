import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdminServer } from '../../src/admin/server.js';
import { startControllerAdmin } from '../../src/control/command.js';
import { startController, type RunningController } from '../../src/control/start.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { callRecord, controllerConfig, testLogger, until, writeCalls } from '../helpers/controller.js';
import { CONFIRM_BLOCKS_KEY } from '../../src/redis/keys.js';

/** The controller's own admin API: readiness follows the lease, metrics, calls in progress, confirm-blocks. */

let topology: Topology;
let running: RunningController;
let admin: AdminServer;

beforeAll(async () => {
  topology = await startTopology({ replicas: 1, sentinels: 1 });
  await topology.seed({ 'acct-a': { enabled: true, balance: 50, rate: 0.01 } });
  const config = controllerConfig(topology, 'ctl-admin', { admin_listen: '127.0.0.1:0', wait_replicas: 0 });
  running = startController(config, testLogger());
  admin = await startControllerAdmin(config, running, testLogger());
});
afterAll(async () => {
  await admin?.stop();
  await running?.stop();
  await topology?.stop();
});

const get = (path: string, init?: RequestInit) => fetch(`http://127.0.0.1:${admin.port}${path}`, init);

describe("the controller's admin API", () => {
  it('/readyz answers 200 once this controller holds the lease and acts', async () => {
    await until('controller acting', 10_000, async () => running.controller.isLeader);
    const res = await get('/readyz');
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ leader: true });
  });

  it('/metrics serves the controller metrics', async () => {
    const text = await (await get('/metrics')).text();
    for (const name of ['credit_controller_rounds_total', 'credit_controller_leader', 'credit_controller_breaker_open', 'credit_controller_blocks_total']) {
      expect(text).toContain(name);
    }
  });

  it('/calls/:account shows the calls in progress recorded on the master', async () => {
    await writeCalls(topology, [callRecord('acct-a', 'call-1@test', 0.5, { rate: 0.01 })]);
    const body = (await (await get('/calls/acct-a')).json()) as Record<string, { callId: string }[]>;
    expect(body['acct-a']?.map((c) => c.callId)).toEqual(['call-1@test']);
  });

  it('POST /confirm-blocks sets the confirmation on the master', async () => {
    const res = await get('/confirm-blocks', { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await topology.master.client.get(CONFIRM_BLOCKS_KEY)).toMatch(/^admin api at /);
  });
});
