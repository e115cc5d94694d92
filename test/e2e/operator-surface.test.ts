import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { startAdmin } from '../../src/admin/server.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { startEdgeService, type EdgeService } from '../../src/edge/service.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { cli } from '../helpers/cli.js';
import { until } from '../helpers/controller.js';
import { engineUnderTest, type EngineUnderTest } from '../helpers/engine-under-test.js';
import { finalsReceived } from '../helpers/edge-under-test.js';
import { runSipp, startSipp, stopAllSipp, type SippProcess, type SippResult } from '../helpers/sipp.js';
import { AUDIT_STREAM, callsKey } from '../../src/redis/keys.js';

/**
 * The operator surface against a real system: Redis master, two replicas and a Sentinel, the SIP
 * engine under test, two SIPp carriers, and the edge run as `credit-edge edge` runs it (config
 * file, admin API on 0.0.0.0 with a token, reloads by POST /reload and SIGHUP).
 */

const TOKEN = 'test-token-0123456789abcdef';
const logger = process.env.EDGE_LOG ? createLogger({ level: process.env.EDGE_LOG }) : silentLogger;

let topology: Topology;
let engine: EngineUnderTest;
let carrierA: SippProcess;
let carrierB: SippProcess;
let service: EdgeService;
let dir: string;
let configFile: string;
let admin: string;

function configFor(options: { carrier: SippProcess; replicas?: number; hedgeDelayMs?: number }): Record<string, unknown> {
  return {
    node_id: 'edge-ops',
    sip: { server: engine.control, embedded_engine: { enabled: false } },
    redis: {
      replicas: topology.replicas.slice(0, options.replicas ?? 2).map((r) => ({ name: r.name, host: r.host, port: r.port })),
      sentinel: { master_name: topology.masterName, addresses: topology.sentinels.map((s) => `${s.host}:${s.port}`) },
    },
    lookup: { hedge_delay_ms: options.hedgeDelayMs ?? 3 },
    routes: { default: [`sip:127.0.0.1:${options.carrier.port}`] },
    admin: { listen: '0.0.0.0:0', token: TOKEN },
  };
}

function writeConfig(config: Record<string, unknown> | string): void {
  fs.writeFileSync(configFile, typeof config === 'string' ? config : stringify(config));
}

async function get(pathname: string, token: string | null = TOKEN): Promise<{ status: number; body: any; text: string }> {
  const res = await fetch(admin + pathname, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

function call(account: string, opts: Parameters<typeof runSipp>[0] | object = {}): Promise<SippResult> {
  return runSipp({ scenario: 'edge-uac', vars: { HOLD: '100' }, remote: engine.sipTarget, injection: [[account]], service: 'callee', ...opts });
}

/** The carrier port each answered call came from (the 200's Contact). */
function answeringPorts(result: SippResult): number[] {
  return result.messages
    .filter((m) => m.direction === 'received' && m.status === 200 && m.headers.cseq?.[0]?.includes('INVITE'))
    .map((m) => Number(/:(\d+)/.exec(m.headers.contact?.[0]?.replace(/^.*@/, '') ?? '')?.[1]));
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credit-edge-ops-'));
  configFile = path.join(dir, 'credit-edge.yaml');
  topology = await startTopology({ replicas: 2, sentinels: 1 });
  await topology.seedFile('config/demo-accounts.yaml');
  await topology.seed({ 'acct-secret': { enabled: true, balance: 5, sip_password: 'never-show-me-1' } });
  engine = await engineUnderTest();
  carrierA = await startSipp({ scenario: 'uas-answer', calls: 0, timeoutMs: 0, traceMessages: false });
  carrierB = await startSipp({ scenario: 'uas-answer', calls: 0, timeoutMs: 0, traceMessages: false });
  writeConfig(configFor({ carrier: carrierA }));
  service = await startEdgeService({ file: configFile, env: {}, logger, handleSighup: true });
  admin = `http://127.0.0.1:${service.admin.port}`;
  await service.edge.connected;
  await service.edge.pool.waitInSync(2);
}, 60_000);

afterAll(async () => {
  await service?.stop();
  await stopAllSipp();
  await engine?.stop();
  await topology?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('admin API', () => {
  it('bound beyond loopback: /healthz and /metrics are open, everything else needs the token', async () => {
    expect(service.admin.host).toBe('0.0.0.0');
    expect((await get('/healthz', null)).status).toBe(200);
    expect((await get('/metrics', null)).status).toBe(200);
    for (const pathname of ['/readyz', '/replicas', '/accounts/acct-ok']) {
      expect((await get(pathname, null)).status).toBe(401);
      expect((await get(pathname, 'wrong-token-0123456789')).status).toBe(401);
    }
    const reload = await fetch(`${admin}/reload`, { method: 'POST' });
    expect(reload.status).toBe(401);
    expect((await get('/readyz')).status).toBe(200);
  });

  it('refuses to start beyond loopback without a token', async () => {
    await expect(startAdmin({ listen: '0.0.0.0:0', token: () => undefined, logger: silentLogger })).rejects.toThrow(/beyond loopback/);
  });

  it('/metrics exposes every edge metric after a few calls', async () => {
    for (const account of ['acct-ok', 'acct-nocredit', 'acct-missing']) await call(account);
    const { text } = await get('/metrics', null);
    for (const name of [
      'credit_edge_decisions_total',
      'credit_edge_decision_seconds',
      'credit_edge_pdd_seconds',
      'credit_edge_replica_health',
      'credit_edge_replica_lag_seconds',
      'credit_edge_cache_entries',
      'credit_edge_stale_serves_total',
      'credit_edge_invites_in_flight',
      'credit_edge_overload_rejections_total',
      'credit_edge_config_reloads_total',
    ]) {
      expect(text, name).toMatch(new RegExp(`^# TYPE ${name} `, 'm'));
    }
    expect(text).toMatch(/^credit_edge_decisions_total\{outcome="route",status="proxy",basis="replica"\} [1-9]/m);
    expect(text).toMatch(/^credit_edge_decisions_total\{outcome="out-of-credit",status="403",basis="replica"\} [1-9]/m);
    expect(text).toMatch(/^credit_edge_pdd_seconds_count\{path="rejected"\} [1-9]/m);
    expect(text).toMatch(/^credit_edge_pdd_seconds_count\{path="proxied"\} [1-9]/m);
    expect(text).toMatch(new RegExp(`^credit_edge_replica_health\\{replica="${topology.replicas[0]!.name}",state="in-sync"\\} 1`, 'm'));
    expect(text).toMatch(/^credit_edge_cache_entries [1-9]/m);
  });

  it('/accounts/:id matches Redis on every replica, with the cache, calls and last decision; secrets redacted', async () => {
    await call('acct-secret');
    const master = await topology.master.client.hgetall('account:acct-secret');
    const { status, body } = await get('/accounts/acct-secret');
    expect(status).toBe(200);
    expect(body.replicas).toHaveLength(2);
    for (const view of body.replicas) {
      expect(view.outcome).toBe('found');
      expect(view.fields).toEqual({ ...master, sip_password: '[redacted]' });
    }
    expect(body.cache.account).toMatchObject({ id: 'acct-secret', enabled: true, balance: 5, sipPassword: '[redacted]' });
    expect(body.callsInProgress).toBe(0);
    expect(body.lastDecision).toMatchObject({ outcome: 'route', status: 'proxy' });
    expect(JSON.stringify(body)).not.toContain('never-show-me-1');

    const missing = await get('/accounts/acct-missing');
    expect(missing.body.replicas.map((r: { outcome: string }) => r.outcome)).toEqual(['absent', 'absent']);
    expect((await get('/accounts/bad%20id')).status).toBe(400);
  });

  it('/replicas and `credit-edge replicas` show each replica healthy', async () => {
    const { body } = await get('/replicas');
    expect(body.replicas.map((r: { health: string }) => r.health)).toEqual(['in-sync', 'in-sync']);
    const { out } = await cli(['replicas', '-c', configFile, '--admin', `127.0.0.1:${service.admin.port}`]);
    expect(out).toContain(topology.replicas[0]!.name);
    expect(out).toMatch(/in-sync/);
  });

  it('`credit-edge end-call` ends a call the edge carries (POST /calls/:callId/end, token required); an unknown Call-ID is said so', async () => {
    const adminArgs = ['-c', configFile, '--admin', `127.0.0.1:${service.admin.port}`];
    const held = await startSipp({ scenario: 'edge-uac-until-bye', vars: { HOLD: '15000' }, remote: engine.sipTarget, injection: [['acct-ok']], service: 'callee' });
    let callId = '';
    await until('the call answered and recorded', 10_000, async () => (callId = (await topology.master.client.hkeys(callsKey('acct-ok')))[0] ?? '') !== '');
    expect((await fetch(`${admin}/calls/${encodeURIComponent(callId)}/end`, { method: 'POST' })).status).toBe(401);

    const { out } = await cli(['end-call', callId, ...adminArgs]);
    expect(out).toBe('ended: caller ended, callee ended\n');
    const result = await held.done;
    expect(result.messages.find((m) => m.direction === 'received' && m.method === 'BYE')?.headers.reason).toEqual(['Q.850;cause=16;text="ended by operator"']);
    await expect(cli(['end-call', callId, ...adminArgs])).rejects.toThrow(/not ended \(HTTP 404\): this edge carries no answered call with that Call-ID/);
  }, 30_000);
});

describe('reload', () => {
  it('under SIPp traffic, a new route and replica list take effect without a failed call', async () => {
    const calls = 40;
    const traffic = runSipp({
      scenario: 'edge-uac',
      vars: { HOLD: '300' },
      remote: engine.sipTarget,
      injection: Array.from({ length: calls }, () => ['acct-ok']),
      service: 'callee',
      calls,
      rate: 20,
      limit: 8,
      timeoutMs: 30_000,
    });
    await new Promise((resolve) => setTimeout(resolve, 800));
    writeConfig(configFor({ carrier: carrierB, replicas: 1, hedgeDelayMs: 4 }));
    const { out } = await cli(['reload', '-c', configFile, '--admin', `127.0.0.1:${service.admin.port}`]);
    expect(out).toMatch(/reloaded: applied .*redis\.replicas.*routes/);
    const result = await traffic;

    expect(result.failed, result.output.slice(-1500)).toBe(0);
    expect(result.successful).toBe(calls);
    const ports = answeringPorts(result);
    expect(ports).toHaveLength(calls);
    expect(ports).toContain(carrierA.port);
    expect(ports).toContain(carrierB.port);
    // Once B appears, A never comes back: the new route holds for every later call.
    expect(ports.slice(ports.indexOf(carrierB.port)).every((p) => p === carrierB.port)).toBe(true);
    expect(service.edge.pool.replicas.map((r) => r.name)).toEqual([topology.replicas[0]!.name]);
    expect(service.config().lookup.hedge_delay_ms).toBe(4);
  });

  it('a bad config (SIGHUP, POST /reload, `credit-edge reload`) is refused and the edge keeps serving', async () => {
    writeConfig('lookup:\n  hedge_delay_ms: soon\nroutes:\n  default: [nowhere]\n');
    process.kill(process.pid, 'SIGHUP');
    await vi.waitFor(async () => expect((await get('/metrics', null)).text).toMatch(/^credit_edge_config_reloads_total\{result="refused"\} 1/m), { timeout: 5000 });

    const res = await fetch(`${admin}/reload`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(422);
    const outcome = (await res.json()) as { ok: boolean; problems: string[] };
    expect(outcome.ok).toBe(false);
    expect(outcome.problems).toEqual([expect.stringMatching(new RegExp(`^${configFile}:2: lookup\\.hedge_delay_ms: `)), expect.stringMatching(new RegExp(`^${configFile}:4: routes\\.default\\.0: `))]);
    await expect(cli(['reload', '-c', configFile, '--admin', `127.0.0.1:${service.admin.port}`])).rejects.toThrow(/not reloaded: .* 2 problem\(s\); the edge keeps its config/);

    expect(service.config().routes.default).toEqual([`sip:127.0.0.1:${carrierB.port}`]);
    const r = await call('acct-ok');
    expect(finalsReceived(r).map((m) => m.status)).toEqual([200]);
    expect(answeringPorts(r)).toEqual([carrierB.port]);
  });
});

describe('credit-edge account (through Sentinel to the master)', () => {
  const cfg = () => ['-c', configFile];
  beforeAll(() => writeConfig(configFor({ carrier: carrierB, replicas: 1 })));

  it('set writes valid values and refuses what the edge could not parse, leaving the master as it was', async () => {
    const { out } = await cli(['account', 'set', 'acct-new', 'enabled=1', 'balance=7.5', 'max_channels=3', ...cfg()]);
    expect(out).toMatch(/account acct-new written on master 127\.0\.0\.1:\d+/);
    expect(await topology.master.client.hgetall('account:acct-new')).toEqual({ enabled: '1', balance: '7.5', max_channels: '3' });

    await expect(cli(['account', 'set', 'acct-new', 'balance=ten', ...cfg()])).rejects.toThrow(/refused: field balance has a bad value "ten"/);
    await expect(cli(['account', 'set', 'acct-new', 'enabled=yes', ...cfg()])).rejects.toThrow(/field enabled has a bad value/);
    await expect(cli(['account', 'set', 'acct-new', 'balanse=1', ...cfg()])).rejects.toThrow(/unknown field balanse/);
    await expect(cli(['account', 'set', 'acct-other', 'balance=1', ...cfg()])).rejects.toThrow(/a new account needs enabled/);
    expect(await topology.master.client.hgetall('account:acct-new')).toEqual({ enabled: '1', balance: '7.5', max_channels: '3' });

    await cli(['account', 'set', 'acct-new', '--unset', 'max_channels', ...cfg()]);
    expect(await topology.master.client.hgetall('account:acct-new')).toEqual({ enabled: '1', balance: '7.5' });
  });

  it('block and unblock write credit_blocked with a reason, audited; show redacts secrets', async () => {
    await cli(['account', 'block', 'acct-new', '--reason', 'chargeback 4711', ...cfg()]);
    expect(await topology.master.client.hgetall('account:acct-new')).toMatchObject({ credit_blocked: '1', credit_block_reason: 'chargeback 4711', credit_blocked_by: 'operator' });
    const r = await call('acct-new');
    expect(finalsReceived(r)[0]).toMatchObject({ status: 403, reason: 'Out Of Call Credit' });

    await cli(['account', 'unblock', 'acct-new', '--reason', 'resolved', ...cfg()]);
    const fields = await topology.master.client.hgetall('account:acct-new');
    expect(fields.credit_blocked).toBe('0');
    expect(fields.credit_block_reason).toBeUndefined();
    const audit = await topology.master.client.xrevrange(AUDIT_STREAM, '+', '-', 'COUNT', 2);
    expect(audit.map(([, f]) => f[f.indexOf('action') + 1])).toEqual(['unblock', 'block']);

    await cli(['account', 'set', 'acct-secret', 'max_cps=5', ...cfg()]);
    const { out } = await cli(['account', 'show', 'acct-secret', ...cfg()]);
    expect(out).toContain('account acct-secret (valid)');
    expect(out).toContain('sip_password: [redacted]');
    // Its limits and what it uses of them now, all edges, as the master counts.
    expect(out).toContain('max_cps: 5');
    expect(out).toContain('channels in use: 0 (0 answered, 0 being set up)');
    expect(out).toContain('calls admitted in the last second: 0');
    expect(out).not.toContain('never-show-me-1');
    await expect(cli(['account', 'show', 'acct-missing', ...cfg()])).rejects.toThrow(/no account acct-missing/);
  });
});

describe('credit-edge edge with the embedded engine', () => {
  it('starts the engine from sip.embedded_engine, answers /healthz and /readyz, and stops', async () => {
    const file = path.join(dir, 'embedded.yaml');
    fs.writeFileSync(
      file,
      stringify({
        sip: { server: { host: '127.0.0.1', port: 0, secret: 'embedded-secret' }, embedded_engine: { enabled: true, listen: '127.0.0.1:0' } },
        redis: { replicas: [{ host: topology.replicas[0]!.host, port: topology.replicas[0]!.port }] },
        admin: { listen: '127.0.0.1:0' },
      }),
    );
    const embedded = await startEdgeService({ file, env: {}, logger });
    try {
      expect(embedded.engine?.sipPort).toBeGreaterThan(0);
      const base = `http://127.0.0.1:${embedded.admin.port}`;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      await vi.waitFor(async () => expect((await fetch(`${base}/readyz`)).status).toBe(200), { timeout: 5000 });
    } finally {
      await embedded.stop();
    }
  });
});
