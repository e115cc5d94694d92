import { randomBytes } from 'node:crypto';
import { parseConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { startEdge, type RunningEdge } from '../edge/start.js';
import { startEngine, type Engine } from '../engine/index.js';
import type { Logger } from '../log.js';
import { startListeningSipp, type SippProcess } from './sipp.js';
import type { Topology } from './topology.js';

/**
 * The SIP side of a local system, on top of a running Redis topology: the embedded SIP engine (or
 * an external drachtio-server), a SIPp UAS standing in for the downstream carrier, and the edge
 * reading the topology's replicas. Used by the demo, the end-to-end tests and the benchmark.
 */
export interface CallPathOptions {
  topology: Topology;
  logger: Logger;
  /** Where callers send SIP (embedded engine); port 0 picks a free one. Default 127.0.0.1:0. */
  sip?: { host: string; port: number };
  /** Use this SIP server instead of starting the embedded engine (e.g. a drachtio-server). */
  external?: { control: { host: string; port: number; secret: string }; sipTarget: string };
  /** Adjusts the generated config before it is validated (e.g. lookup timings, digest order). */
  config?: (generated: Record<string, unknown>) => Record<string, unknown>;
  /** Leave out the downstream carrier (tests that bring their own). */
  carrier?: boolean;
}

export interface CallPath {
  engine?: Engine;
  carrier?: SippProcess;
  edge: RunningEdge;
  config: Config;
  /** host:port where callers send INVITEs. */
  sipTarget: string;
  stop(): Promise<void>;
}

export async function startCallPath(options: CallPathOptions): Promise<CallPath> {
  const { topology, logger } = options;
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => logger.warn({ err }, 'stop failed'));
  };
  try {
    let engine: Engine | undefined;
    let control = options.external?.control;
    let sipTarget = options.external?.sipTarget;
    if (!control || !sipTarget) {
      const secret = randomBytes(12).toString('hex');
      engine = await startEngine({ sip: options.sip ?? { host: '127.0.0.1', port: 0 }, control: { host: '127.0.0.1', port: 0, secret }, cdrs: true, logger });
      stops.push(() => engine!.stop());
      control = { host: '127.0.0.1', port: engine.controlPort, secret };
      sipTarget = `${engine.sipHost}:${engine.sipPort}`;
    }

    let carrier: SippProcess | undefined;
    if (options.carrier !== false) {
      carrier = await startListeningSipp({ scenario: 'uas-answer', calls: 0, timeoutMs: 0, traceMessages: false });
      stops.push(() => carrier!.stop());
    }

    const generated: Record<string, unknown> = {
      node_id: 'edge-local',
      sip: { server: control, embedded_engine: { enabled: false } },
      redis: {
        replicas: topology.replicas.map((r) => ({ name: r.name, host: r.host, port: r.port })),
        ...(topology.sentinels.length > 0 && { sentinel: { master_name: topology.masterName, addresses: topology.sentinelAddresses().map((s) => `${s.host}:${s.port}`) } }),
      },
      // Calls in progress are recorded on the master through Sentinel; a topology without one cannot.
      calls_in_progress: { enabled: topology.sentinels.length > 0 },
      routes: { default: [`sip:127.0.0.1:${carrier?.port ?? 5080}`] },
    };
    const config = parseConfig(JSON.stringify(options.config ? options.config(generated) : generated), '(local call path)');
    const edge = startEdge(config, logger.child({ component: 'edge' }));
    stops.push(() => edge.stop());
    await edge.connected;
    await edge.pool.waitInSync(1);
    return { engine, carrier, edge, config, sipTarget, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
