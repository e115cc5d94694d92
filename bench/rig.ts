import { randomBytes } from 'node:crypto';
import { parseConfig } from '../src/config/load.js';
import { startSipp, type SippProcess } from '../src/dev/sipp.js';
import { startTopology, type Topology } from '../src/dev/topology.js';
import { startEdge, type RunningEdge } from '../src/edge/start.js';
import { startEngine, type Engine } from '../src/engine/index.js';
import type { Logger } from '../src/log.js';

/**
 * What a benchmark run stands on: the local Redis topology, the embedded SIP engine, a SIPp UAS
 * as the carrier (rings and answers at once), and the edge. Like src/dev/call-path.ts, except the
 * edge can be swapped between arms (gating on / off) on the same engine, carrier and Redis: the
 * engine hands INVITEs round robin to every connected app, so exactly one edge is connected at a
 * time. The edge runs in this Node process, with the engine and the runner.
 */
export interface Rig {
  topology: Topology;
  engine: Engine;
  carrier: SippProcess;
  sipTarget: string;
  edge: RunningEdge;
  gated: boolean;
  /** Replaces the edge by a fresh one (gating on or off), connected and with a replica in sync. */
  useEdge(gated: boolean): Promise<void>;
  stop(): Promise<void>;
}

export interface RigOptions {
  sentinels: number;
  logger: Logger;
}

export async function startRig(options: RigOptions): Promise<Rig> {
  const { logger } = options;
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => logger.warn({ err }, 'bench: stop failed'));
    stops.length = 0;
  };
  try {
    const topology = await startTopology({ replicas: 2, sentinels: options.sentinels, logger: logger.child({ component: 'topology' }) });
    stops.push(() => topology.stop());
    const secret = randomBytes(12).toString('hex');
    const engine = await startEngine({ sip: { host: '127.0.0.1', port: 0 }, control: { host: '127.0.0.1', port: 0, secret }, cdrs: true, logger: logger.child({ component: 'engine' }) });
    stops.push(() => engine.stop());
    const carrier = await startSipp({ scenario: 'uas-answer', calls: 0, timeoutMs: 0, traceMessages: false });
    stops.push(() => carrier.stop());

    // The product's defaults, plus the X-Credit-Decision header so the runner can tell answers
    // served from the stale cache (the same header in both arms; routed calls never carry it).
    const configFor = (gated: boolean) =>
      parseConfig(
        JSON.stringify({
          node_id: 'edge-bench',
          sip: { server: { host: '127.0.0.1', port: engine.controlPort, secret }, embedded_engine: { enabled: false } },
          redis: { replicas: topology.replicas.map((r) => ({ name: r.name, host: r.host, port: r.port })) },
          routes: { default: [`sip:127.0.0.1:${carrier.port}`] },
          decision_header: true,
          bypass_gating: !gated,
        }),
        '(bench rig)',
      );

    let edge: RunningEdge | undefined;
    const rig: Rig = {
      topology,
      engine,
      carrier,
      sipTarget: `${engine.sipHost}:${engine.sipPort}`,
      get edge() {
        if (!edge) throw new Error('bench rig: no edge running');
        return edge;
      },
      gated: true,
      async useEdge(gated) {
        if (edge) await edge.stop();
        edge = undefined;
        const next = startEdge(configFor(gated), logger.child({ component: 'edge', gated }));
        edge = next;
        await next.connected;
        await next.pool.waitInSync(1);
        rig.gated = gated;
      },
      stop: async () => {
        if (edge) await edge.stop().catch(() => undefined);
        edge = undefined;
        await stopAll();
      },
    };
    return rig;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
