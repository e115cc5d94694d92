import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../../src/dev/ports.js';
import { startListeningSipp } from '../../src/dev/sipp.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import type { Logger } from '../../src/log.js';
import { startCli, type CliProcess } from '../cli-process.js';
import { waitReady } from '../edge-admin.js';
import { startEdgeProcess, type EdgeProcess } from '../edge-process.js';

/**
 * The system as deployed, each part in its own process: a Redis master, two replicas and three
 * Sentinels; the SIP server (the embedded engine as `credit-edge-dev engine`, or an external
 * drachtio-server named by DRACHTIO_*); two edges (`credit-edge edge`) sharing the replicas and
 * the master, each routing to its own carrier (a SIPp UAS), so the carrier that answered a call
 * names the edge that routed it; the credit controller and a standby (`credit-edge controller`).
 * Every part can be killed and started again the way an operator's supervisor would.
 */

export interface SoakEdge {
  name: string;
  /** host:port of the carrier it routes to: the Contact of the calls it routed. */
  carrier: string;
  configFile: string;
  adminUrl: string;
  readonly process: EdgeProcess | undefined;
  /** Starts it (again) from its config file; resolves once it is ready. */
  start(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  /** SIGTERM: an orderly stop; the edge drains its calls in progress first (bounded here by `graceMs`). */
  stop(graceMs: number): Promise<void>;
}

export interface SoakController {
  name: string;
  configFile: string;
  adminUrl: string;
  readonly running: boolean;
  start(): Promise<void>;
  kill(): Promise<void>;
}

export interface SoakSipServer {
  kind: 'embedded engine (credit-edge-dev engine)' | 'external drachtio-server';
  sipTarget: string;
  /** False for an external drachtio-server: not ours to restart. */
  restartable: boolean;
  /** SIGKILL, then started again on the same ports after `downMs`. */
  restart(downMs: number): Promise<void>;
  stop(): Promise<void>;
}

export interface SoakSystem {
  topology: Topology;
  sipServer: SoakSipServer;
  edges: SoakEdge[];
  controllers: SoakController[];
  stop(): Promise<void>;
}

export interface SoakSystemOptions {
  runDir: string;
  logger: Logger;
  /** The edges' cache.max_stale_ms (the checker judges 503s against it). */
  maxStaleMs: number;
}

const EDGE_NAMES = ['edge-a', 'edge-b'];
const CONTROLLER_NAMES = ['controller-a', 'controller-b'];

export async function startSoakSystem(o: SoakSystemOptions): Promise<SoakSystem> {
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => o.logger.warn({ err }, 'soak: stop failed'));
    stops.length = 0;
  };
  try {
    const topology = await startTopology({ replicas: 2, sentinels: 3, logger: o.logger });
    stops.push(() => topology.stop());
    const sipServer = await startSipServer(o.runDir);
    stops.push(() => sipServer.server.stop());

    // Every Redis node is listed as a replica: the edge reads only from nodes that say ROLE slave
    // and in sync, so after a failover the old master, demoted, serves reads again.
    const redis = {
      replicas: [topology.master, ...topology.replicas].map((n) => ({ name: n.name, host: n.host, port: n.port })),
      sentinel: { master_name: topology.masterName, addresses: topology.sentinelAddresses().map((s) => `${s.host}:${s.port}`) },
    };

    const edges: SoakEdge[] = [];
    for (const name of EDGE_NAMES) {
      const carrier = await startListeningSipp({ scenario: 'uas-answer', calls: 0, timeoutMs: 0, traceMessages: false });
      stops.push(() => carrier.stop());
      const edge = await soakEdge({
        name,
        runDir: o.runDir,
        carrier: `127.0.0.1:${carrier.port}`,
        adminListen: `127.0.0.1:${await freePort()}`,
        config: {
          node_id: name,
          log_level: 'info',
          sip: { server: sipServer.control },
          redis,
          cache: { max_stale_ms: o.maxStaleMs },
          routes: { default: [`sip:127.0.0.1:${carrier.port}`] },
          decision_header: true,
        },
      });
      stops.push(() => edge.process?.stop() ?? Promise.resolve());
      edges.push(edge);
    }
    await Promise.all(edges.map((e) => e.start()));

    const controllers: SoakController[] = [];
    for (const name of CONTROLLER_NAMES) {
      const admin = `127.0.0.1:${await freePort()}`;
      // The breaker sized for this deployment: most of its ~25 accounts with calls in progress are
      // low-credit ones made to run dry (about 14 a minute), a share no real deployment has, which
      // the default share rule (20% from 20 accounts) holds as a mass block. The absolute rule
      // (20 new blocks a minute) stays; test/integration covers the breaker itself.
      const controller = soakController({ name, runDir: o.runDir, config: { log_level: 'info', redis, controller: { name, admin_listen: admin, breaker: { min_accounts: 100 } } }, admin });
      stops.push(() => controller.stop());
      controllers.push(controller);
      await controller.start();
    }

    return { topology, sipServer: sipServer.server, edges, controllers, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

async function soakEdge(o: { name: string; runDir: string; carrier: string; adminListen: string; config: Record<string, unknown> }): Promise<SoakEdge> {
  let current: EdgeProcess | undefined;
  const configFile = path.join(o.runDir, `edge-${o.name}.json`);
  return {
    name: o.name,
    carrier: o.carrier,
    configFile,
    adminUrl: `http://${o.adminListen}`,
    get process() {
      return current;
    },
    async start() {
      if (current?.running()) throw new Error(`${o.name} is running`);
      // Started again from its file as it is now (an operator may have edited it since).
      const config = current ? (JSON.parse(readFileSync(configFile, 'utf8')) as Record<string, unknown>) : o.config;
      current = await startEdgeProcess({ config, gated: true, label: o.name, runDir: o.runDir, cpuProfile: false, adminListen: o.adminListen, logName: o.name });
    },
    async kill() {
      await current?.kill();
    },
    async stop(graceMs) {
      await current?.stop(graceMs);
    },
  };
}

function soakController(o: { name: string; runDir: string; config: Record<string, unknown>; admin: string }): SoakController & { stop(): Promise<void> } {
  const configFile = path.join(o.runDir, `${o.name}.json`);
  writeFileSync(configFile, JSON.stringify(o.config, null, 2) + '\n', { mode: 0o600 });
  const log = path.join(o.runDir, `${o.name}.log`);
  let current: CliProcess | undefined;
  const adminUrl = `http://${o.admin}`;
  return {
    name: o.name,
    configFile,
    adminUrl,
    get running() {
      return current?.running ?? false;
    },
    async start() {
      current = startCli({ name: o.name, args: ['controller', '--config', configFile], stdoutFile: log, stderrFile: log });
      await current.waitForOutput(/controller: \S+ running/, 20_000);
      const proc = current;
      await waitReady(adminUrl, 20_000, () => proc.running, '/healthz');
    },
    async kill() {
      await current?.kill();
    },
    async stop() {
      await current?.stop();
    },
  };
}

/** The SIP server: DRACHTIO_* names an external one (never restarted), else the embedded engine on ports kept across restarts. */
async function startSipServer(runDir: string): Promise<{ server: SoakSipServer; control: { host: string; port: number; secret: string } }> {
  const env = process.env;
  if (env.DRACHTIO_HOST) {
    const [host, port] = (env.DRACHTIO_SIP ?? `${env.DRACHTIO_HOST}:5060`).split(':');
    return {
      server: { kind: 'external drachtio-server', sipTarget: `${host}:${Number(port ?? 5060)}`, restartable: false, restart: async () => undefined, stop: async () => undefined },
      control: { host: env.DRACHTIO_HOST, port: Number(env.DRACHTIO_PORT ?? 9022), secret: env.DRACHTIO_SECRET ?? 'cymru' },
    };
  }
  const secret = randomBytes(12).toString('hex');
  const log = path.join(runDir, 'engine.log');
  const launch = async (sip: string, control: string) => {
    // The secret through the environment, not the command line (visible in ps).
    const engine = startCli({ name: 'engine', dev: true, args: ['engine', '--sip', sip, '--control', control], stdoutFile: log, stderrFile: log, env: { DRACHTIO_SECRET: secret } });
    try {
      const m = await engine.waitForOutput(/^engine: sip (\S+):(\d+) \(udp\+tcp\), control port (\d+)$/m, 15_000);
      return { engine, sip: `${m[1]}:${m[2]}`, controlPort: Number(m[3]) };
    } catch (err) {
      await engine.stop();
      throw err;
    }
  };
  let running = await launch('127.0.0.1:0', '127.0.0.1:0');
  const { sip, controlPort } = running;
  return {
    server: {
      kind: 'embedded engine (credit-edge-dev engine)',
      sipTarget: sip,
      restartable: true,
      async restart(downMs) {
        await running.engine.kill();
        await new Promise((resolve) => setTimeout(resolve, downMs));
        running = await launch(sip, `127.0.0.1:${controlPort}`);
      },
      stop: () => running.engine.stop(),
    },
    control: { host: '127.0.0.1', port: controlPort, secret },
  };
}
