import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import type { AdminServer } from '../admin/server.js';
import { loadConfig } from '../config/load.js';
import { startControllerAdmin } from '../control/command.js';
import { startController, type RunningController } from '../control/start.js';
import { startEdgeService, type EdgeService } from '../edge/service.js';
import type { Logger } from '../log.js';
import { freePort, tcpPortIsFree } from './ports.js';
import { startListeningSipp, type SippProcess } from './sipp.js';
import type { Topology } from './topology.js';

/**
 * The product as production runs it, on a local Redis topology: a config file written for the
 * topology, the edge started from it (`credit-edge edge --config FILE`: the embedded SIP engine,
 * the admin API with /metrics, reload), and, with Sentinels, the credit controller started from the
 * same file (`credit-edge controller --config FILE`: its own admin API with /metrics). A SIPp UAS
 * stands in for the downstream carrier. Used by the demo and by the Prometheus test.
 */

export interface HostPort {
  host: string;
  port: number;
}

export interface LocalSystemOptions {
  topology: Topology;
  /** Where the config file is written. */
  dir: string;
  /** Where callers send SIP (embedded engine, UDP and TCP). */
  sip: HostPort;
  /** The edge's admin API (admin.listen). */
  edgeAdmin: HostPort;
  /** The controller's admin API (controller.admin_listen). */
  controllerAdmin: HostPort;
  logger: Logger;
}

export interface LocalSystem {
  configFile: string;
  carrier: SippProcess;
  edge: EdgeService;
  /** Absent without Sentinels (nothing to find the master with). */
  controller?: { running: RunningController; admin: AdminServer };
  /** host:port where callers send INVITEs. */
  sipTarget: string;
  stop(): Promise<void>;
}

const address = (a: HostPort) => `${a.host}:${a.port}`;

/**
 * The config file for this topology, as an operator would write it (keys of
 * config/credit-edge.example.yaml). Without `sip` (Redis only) it names just the Redis side, which
 * is what the account commands need.
 */
export function localSystemConfig(parts: { topology: Topology; sip?: { listen: HostPort; carrierPort: number; edgeAdmin: HostPort; controllerAdmin: HostPort } }): string {
  const { topology, sip } = parts;
  const withSentinel = topology.sentinels.length > 0;
  const config = {
    ...(sip && { node_id: 'demo-edge' }),
    ...(sip && {
      sip: {
        // Port 0: the embedded engine's control port is any free one; the edge connects to it.
        server: { host: '127.0.0.1', port: 0, secret: randomBytes(12).toString('hex') },
        embedded_engine: { enabled: true, listen: address(sip.listen) },
      },
    }),
    redis: {
      replicas: topology.replicas.map((r) => ({ name: r.name, host: r.host, port: r.port })),
      ...(withSentinel && { sentinel: { master_name: topology.masterName, addresses: topology.sentinelAddresses().map(address) } }),
    },
    ...(sip && {
      // Calls in progress are recorded on the master, found through Sentinel.
      calls_in_progress: { enabled: withSentinel },
      routes: { default: [`sip:127.0.0.1:${sip.carrierPort}`] },
      admin: { listen: address(sip.edgeAdmin) },
      // Calls past their credit are ended (off by default in the product): acct-low's call shows it.
      controller: { name: 'demo-controller', admin_listen: address(sip.controllerAdmin) },
    }),
  };
  return [
    '# Written by `credit-edge-dev demo` for its local system; removed when the demo stops.',
    '# Edit it and run `credit-edge reload --config <this file>` to see a reload.',
    stringify(config, { lineWidth: 0 }),
  ].join('\n');
}

export async function startLocalSystem(options: LocalSystemOptions): Promise<LocalSystem> {
  const { topology, logger } = options;
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => logger.warn({ err }, 'stop failed'));
  };
  try {
    const carrier = await startListeningSipp({ scenario: 'uas-answer', calls: 0, timeoutMs: 0, traceMessages: false });
    stops.push(() => carrier.stop());

    const configFile = path.join(options.dir, 'credit-edge.yaml');
    // It holds the engine's shared secret: readable by its owner only.
    const sip = { listen: options.sip, carrierPort: carrier.port, edgeAdmin: options.edgeAdmin, controllerAdmin: options.controllerAdmin };
    fs.writeFileSync(configFile, localSystemConfig({ topology, sip }), { mode: 0o600 });
    stops.push(async () => fs.rmSync(configFile, { force: true }));

    const edge = await startEdgeService({ file: configFile, logger, handleSighup: true });
    stops.push(() => edge.stop());
    await edge.edge.connected;
    await edge.edge.pool.waitInSync(1);

    let controller: LocalSystem['controller'];
    if (topology.sentinels.length > 0) {
      const { config } = loadConfig(configFile);
      const running = startController(config, logger);
      stops.push(() => running.stop());
      const admin = await startControllerAdmin(config, running, logger);
      stops.push(() => admin.stop());
      controller = { running, admin };
    }
    const sipTarget = edge.engine ? `${edge.engine.sipHost}:${edge.engine.sipPort}` : address(options.sip);
    return { configFile, carrier, edge, ...(controller && { controller }), sipTarget, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** `wanted` when its TCP port is free now, else a free port on its host (the demo prints which). */
export async function portOr(wanted: HostPort): Promise<HostPort> {
  return (await tcpPortIsFree(wanted.host, wanted.port)) ? wanted : { host: wanted.host, port: await freePort({ host: wanted.host }) };
}
