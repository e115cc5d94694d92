import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startCli, type CliProcess } from '../../bench/cli-process.js';
import { waitReady } from '../../bench/edge-admin.js';
import { startCallPath, type CallPath } from '../../src/dev/call-path.js';
import { freePort, freePortAhead } from '../../src/dev/ports.js';
import { startListeningSipp, type SippProcess } from '../../src/dev/sipp.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { ABSENCE_HOLD_KEY, accountKey } from '../../src/redis/keys.js';
import { finalsReceived } from '../helpers/edge-under-test.js';
import { runSipp, stopAllSipp } from '../helpers/sipp.js';

/**
 * The mass-absence hold outlives the edge that opened it. An edge with copies of the accounts
 * (edge-a, in its own process, as in production) recognises a gutted dataset and shares its hold;
 * then it stops, as in a rolling restart (SIGTERM: its hold is left, no longer renewed; a SIGKILL
 * leaves it all the more). An edge started afterwards
 * (edge-c) has no copy of any account: on its own it would confirm each absence and answer 403
 * Forbidden, as it did when a hold lapsed 5 s after its edge died. It answers 503 for as long as
 * the accounts stay absent, and routes them again once they are back, the hold gone from the master.
 */

const ACCOUNTS = Array.from({ length: 60 }, (_, i) => `acct-o-${String(i).padStart(2, '0')}`);
const DELETED = ACCOUNTS.filter((_, i) => i % 3 === 0);
const funded = (ids: string[]) => Object.fromEntries(ids.map((id) => [id, { enabled: true, balance: 100, rate: 0.01 }]));

let topology: Topology | undefined;
let edgeA: CliProcess | undefined;
let carrierA: SippProcess | undefined;
let edgeC: CallPath | undefined;
let dir: string | undefined;

afterEach(async () => {
  await stopAllSipp();
  await edgeC?.stop();
  await edgeA?.stop();
  await carrierA?.stop();
  await topology?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  edgeC = edgeA = carrierA = topology = dir = undefined;
});

/** edge-a: `credit-edge edge` with its embedded engine, reading the topology's replicas, writing on its master through Sentinel. */
async function startEdgeProcess(t: Topology): Promise<{ process: CliProcess; sipTarget: string; log: () => string }> {
  dir = mkdtempSync(path.join(os.tmpdir(), 'credit-edge-orphan-'));
  carrierA = await startListeningSipp({ scenario: 'uas-answer', calls: 0, timeoutMs: 0, traceMessages: false });
  const sipPort = await freePortAhead({ udp: true });
  const admin = `127.0.0.1:${await freePort()}`;
  const config = {
    node_id: 'edge-a',
    log_level: 'info',
    sip: { server: { host: '127.0.0.1', port: await freePort(), secret: 'orphan-test' }, embedded_engine: { enabled: true, listen: `127.0.0.1:${sipPort}` } },
    redis: {
      replicas: t.replicas.map((n) => ({ name: n.name, host: n.host, port: n.port })),
      sentinel: { master_name: t.masterName, addresses: t.sentinelAddresses().map((s) => `${s.host}:${s.port}`) },
    },
    routes: { default: [`sip:127.0.0.1:${carrierA.port}`] },
    calls_in_progress: { enabled: true, liveness_ttl_ms: 900 },
    admin: { listen: admin },
  };
  const configFile = path.join(dir, 'edge-a.json');
  writeFileSync(configFile, JSON.stringify(config), { mode: 0o600 });
  const logFile = path.join(dir, 'edge-a.log');
  const edge = startCli({ name: 'edge-a', args: ['edge', '--config', configFile], stdoutFile: logFile, stderrFile: logFile });
  edgeA = edge;
  await waitReady(`http://${admin}`, 30_000, () => edge.running);
  return { process: edge, sipTarget: `127.0.0.1:${sipPort}`, log: () => readFileSync(logFile, 'utf8') };
}

async function callOnce(sipTarget: string, account: string): Promise<{ status: number; reason: string }> {
  const result = await runSipp({ scenario: 'edge-uac', vars: { HOLD: '100' }, remote: sipTarget, injection: [[account]], service: 'callee' });
  const [final] = finalsReceived(result);
  return { status: final!.status!, reason: final!.headers.reason?.[0] ?? '' };
}

describe('the mass-absence hold of an edge that is gone', () => {
  it('stands while the accounts it named stay absent (503, never 403 Forbidden), and is removed once they are back', async () => {
    topology = await startTopology({ replicas: 2, sentinels: 1 });
    await topology.seed(funded(ACCOUNTS));
    const master = topology.master.client;
    const a = await startEdgeProcess(topology);
    // Its copies of every account, read ahead of any call.
    const warmed = () => new Set(a.log().split('\n').filter((l) => l.includes('"local copy warmed"') && !l.includes('"accounts":0')).map((l) => /"replica":"([^"]+)"/.exec(l)?.[1]));
    await vi.waitFor(() => expect(warmed().size).toBe(2), { timeout: 15_000, interval: 100 });

    await master.del(...DELETED.map(accountKey));
    await topology.master.waitForReplicas(2000);
    // Its first deleted account opens its guard (a probe of the others), and it shares that.
    expect((await callOnce(a.sipTarget, DELETED[0]!)).status).toBe(200);
    await vi.waitFor(async () => expect(await master.hlen(ABSENCE_HOLD_KEY)).toBe(1), { timeout: 5000, interval: 50 });
    await a.process.stop();
    expect(await master.hlen(ABSENCE_HOLD_KEY)).toBe(1);

    const lines: string[] = [];
    edgeC = await startCallPath({
      topology,
      logger: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }),
      config: (c) => ({ ...c, node_id: 'edge-c', calls_in_progress: { enabled: true, liveness_ttl_ms: 900 } }),
    });
    const c = edgeC;
    // Well past the 5 s after which a hold no longer written is an orphan (and, before, lapsed).
    const answers: { status: number; reason: string }[] = [];
    for (const placed = Date.now(); Date.now() - placed < 9000; ) answers.push(await callOnce(c.sipTarget, DELETED[1 + (answers.length % (DELETED.length - 1))]!));
    expect(answers.filter((x) => x.status !== 503)).toEqual([]);
    expect(answers.at(-1)!.reason).toContain('mass-absence');
    expect(lines.some((l) => l.includes('mass-absence hold of an edge that is gone kept'))).toBe(true);
    expect(c.edge.guard.state(Date.now())).toMatchObject({ open: false, heldBy: [expect.stringMatching(/^edge-a:/)] });
    // An account that exists is routed as ever.
    expect((await callOnce(c.sipTarget, ACCOUNTS[1]!)).status).toBe(200);

    // The data comes back: the next check of the accounts it named removes it.
    await topology.seed(funded(DELETED));
    await vi.waitFor(async () => expect(await master.hlen(ABSENCE_HOLD_KEY)).toBe(0), { timeout: 5000, interval: 100 });
    await vi.waitFor(() => expect(c.edge.guard.state(Date.now()).heldBy).toBeUndefined(), { timeout: 2000, interval: 50 });
    expect((await callOnce(c.sipTarget, DELETED[2]!)).status).toBe(200);
  }, 90_000);
});
