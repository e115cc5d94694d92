import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startCli, type CliProcess } from '../../bench/cli-process.js';
import { freePort } from '../../src/dev/ports.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { buildDockerfile, type BuiltImage } from '../helpers/dockerfile.js';
import { engineUnderTest, type EngineUnderTest } from '../helpers/engine-under-test.js';
import { startListeningSipp } from '../../src/dev/sipp.js';
import { assertSippRan, finalsReceived } from '../helpers/edge-under-test.js';
import { runSipp, startSipp, stopAllSipp, type SippProcess } from '../helpers/sipp.js';
import { until } from '../helpers/controller.js';

/**
 * The production image, as its Dockerfile builds it: the same files copied, `npm ci --omit=dev`,
 * the product compiled alone (test/helpers/dockerfile.ts carries the Dockerfile out in a temporary
 * folder; no Docker engine runs here). Then the image's entry point, with the image's environment
 * (NODE_ENV=production), from that folder: what an operator meets first on a server.
 */

const run = promisify(execFile);
let tmp: string;
let image: BuiltImage;

/** The image's entry point with `args` (what `docker run IMAGE args...` runs), in its WORKDIR. */
function entrypoint(args: string[], env: Record<string, string> = {}) {
  const [node, ...rest] = image.entrypoint;
  expect(node).toBe('node');
  return run(process.execPath, [...rest, ...args], { cwd: image.workdir, env: { PATH: process.env.PATH ?? '', ...image.env, ...env }, timeout: 30_000 });
}

async function failure(p: Promise<unknown>): Promise<{ code: number; stderr: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code: number; stderr: string };
  }
  throw new Error('expected the command to fail');
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'credit-edge-image-'));
  // Offline: npm installs from the cache `npm ci` filled (scripts/setup.sh); a test reaches nothing beyond this machine.
  image = buildDockerfile({ dockerfile: 'Dockerfile', context: '.', into: tmp, runEnv: { npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false' } });
}, 180_000);

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the production image, built as its Dockerfile says', () => {
  it('holds the compiled product, production dependencies and nothing of the development kit', () => {
    expect(image.env.NODE_ENV).toBe('production');
    expect(image.user).toBe('node');
    expect(fs.existsSync(path.join(image.workdir, 'dist/src/cli.js'))).toBe(true);
    for (const dev of ['dist/src/dev', 'dist/bench', 'dist/test', 'src', 'bench', 'test', 'node_modules/vitest', 'node_modules/typescript']) {
      expect(fs.existsSync(path.join(image.workdir, dev)), dev).toBe(false);
    }
  });

  it('runs its CLI: the production commands, and no demo, engine or bench', async () => {
    const { stdout } = await entrypoint(['--help']);
    for (const command of ['edge', 'controller', 'check-config', 'reload', 'account', 'dataset', 'replicas', 'audit', 'calls']) expect(stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    for (const command of ['demo', 'engine', 'bench']) expect(stdout).not.toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    expect((await entrypoint(['edge', '--help'])).stdout).toContain('--config <file>');
  });

  it('check-config on the example config: refused in production until the SIP server is named, then ok', async () => {
    const refused = await failure(entrypoint(['check-config', 'config/credit-edge.example.yaml']));
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^config\/credit-edge\.example\.yaml:\d+: sip\.embedded_engine\.enabled: /m);
    expect(refused.stderr).toMatch(/^config\/credit-edge\.example\.yaml:\d+: sip\.server\.secret: /m);
    const ok = await entrypoint(['check-config', 'config/credit-edge.example.yaml'], { CREDIT_EDGE_SIP__EMBEDDED_ENGINE__ENABLED: 'false', CREDIT_EDGE_SIP__SERVER__SECRET: 'a-secret-of-ours' });
    expect(ok.stdout).toBe('config/credit-edge.example.yaml: ok\n');
  });

  describe('an edge started from the image against real Redis', () => {
    let topology: Topology;
    let engine: EngineUnderTest;
    let carrier: SippProcess;
    let edge: CliProcess | undefined;
    let configFile: string;
    let admin: string;

    beforeAll(async () => {
      topology = await startTopology({ replicas: 2, sentinels: 1 });
      await topology.seedFile('config/demo-accounts.yaml');
      engine = await engineUnderTest();
      carrier = await startListeningSipp({ scenario: 'uas-answer', calls: 0, timeoutMs: 0, traceMessages: false });
      admin = `127.0.0.1:${await freePort()}`;
      configFile = path.join(tmp, 'credit-edge.yaml');
      fs.writeFileSync(
        configFile,
        stringify({
          node_id: 'edge-image',
          sip: { server: { host: engine.control.host, port: engine.control.port }, embedded_engine: { enabled: false } },
          redis: {
            replicas: topology.replicas.map((r) => ({ name: r.name, host: r.host, port: r.port })),
            sentinel: { master_name: topology.masterName, addresses: topology.sentinelAddresses().map((s) => `${s.host}:${s.port}`) },
          },
          routes: { default: [`sip:127.0.0.1:${carrier.port}`] },
          admin: { listen: admin },
        }),
      );
    });

    afterAll(async () => {
      await edge?.stop();
      await stopAllSipp();
      await engine?.stop();
      await topology?.stop();
    });

    it('refuses the well-known SIP secret, naming the key', async () => {
      const refused = await failure(entrypoint(['edge', '--config', configFile]));
      expect(refused.stderr).toMatch(/sip\.server\.secret \(not set: the default\): the well-known default secret/);
      expect(refused.stderr).toContain('not started');
    });

    it('starts with a secret from the environment, gets ready and routes a call', async () => {
      const log = path.join(tmp, 'edge.log');
      const [, ...nodeFlags] = image.entrypoint;
      const script = nodeFlags.pop()!;
      edge = startCli({
        name: 'edge (image)',
        script,
        cwd: image.workdir,
        nodeFlags,
        args: ['edge', '--config', configFile],
        stdoutFile: log,
        stderrFile: log,
        env: { ...image.env, CREDIT_EDGE_SIP__SERVER__SECRET: engine.control.secret },
      });
      await edge.waitForOutput(/edge: config .*; admin http:\/\//, 20_000);
      let ready = 0;
      for (let i = 0; i < 100 && ready !== 200; i++) {
        ready = (await fetch(`http://${admin}/readyz`)).status;
        if (ready !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ready, edge.tail()).toBe(200);
      // The image's HEALTHCHECK, as Docker runs it (ADMIN_PORT says where the admin API listens).
      const [node, ...check] = image.healthcheck;
      expect(node).toBe('node');
      await run(process.execPath, check, { cwd: image.workdir, env: { ...image.env, ADMIN_PORT: admin.split(':')[1]! }, timeout: 10_000 });

      const call = await runSipp({ scenario: 'edge-uac', vars: { HOLD: '100' }, remote: engine.sipTarget, injection: [['acct-ok']], service: 'callee' });
      assertSippRan(call, 'acct-ok through the image');
      expect(finalsReceived(call).map((m) => m.status)).toEqual([200]);
      // The edge logs pino JSON, production's format: the call's line carries its Call-ID.
      const callId = call.messages.find((m) => m.method === 'INVITE')!.headers['call-id']![0];
      const lines = fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.startsWith('{'));
      expect(lines.some((l) => (JSON.parse(l) as { callId?: string }).callId === callId), edge.tail()).toBe(true);
    });

    it('on SIGTERM drains: not ready, new calls get 503, the call in progress runs to its end, then it exits', async () => {
      expect(edge?.running, 'the edge of the previous case').toBe(true);
      const held = await startSipp({ scenario: 'edge-uac', vars: { HOLD: '3000' }, remote: engine.sipTarget, injection: [['acct-ok']], service: 'callee', timeoutMs: 20_000 });
      // Answered within milliseconds; held 3 s.
      await new Promise((r) => setTimeout(r, 1000));
      process.kill(edge!.pid, 'SIGTERM');
      await edge!.waitForOutput(/edge: draining \(SIGTERM\)/, 5000);
      expect((await fetch(`http://${admin}/readyz`)).status).toBe(503);
      const refused = await runSipp({ scenario: 'edge-uac', vars: { HOLD: '0' }, remote: engine.sipTarget, injection: [['acct-ok']], service: 'callee', timeoutMs: 10_000 });
      expect(finalsReceived(refused).map((m) => [m.status, m.headers.reason?.[0]])).toEqual([[503, 'Q.850;cause=41;text="edge shutting down"']]);
      const done = await held.done;
      assertSippRan(done, 'the call in progress while draining');
      expect(finalsReceived(done).map((m) => m.status)).toEqual([200]);
      await edge!.waitForOutput(/edge: stopping \(drained\)/, 10_000);
      await until('the edge exited', 10_000, async () => !edge!.running);
    });
  });
});
