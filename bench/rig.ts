import { startListeningSipp, type SippProcess } from '../src/dev/sipp.js';
import { startTopology, type Topology } from '../src/dev/topology.js';
import type { Logger } from '../src/log.js';
import { startEdgeProcess, type EdgeProcess } from './edge-process.js';
import { startSipServer, type SipServer } from './sip-server.js';

/**
 * What a benchmark run stands on, each part in its own process as in production: the local Redis
 * topology, the SIP server (the embedded engine as `credit-edge engine`, or an external
 * drachtio-server named in the environment), a SIPp UAS as the carrier (rings and answers at
 * once), and the edge (`credit-edge edge`). The edge is restarted between arms (gating on / off)
 * on the same SIP server, carrier and Redis: the SIP server hands INVITEs round robin to every
 * connected app, so exactly one edge is connected at a time. The runner (this process) only drives
 * SIPp and injects faults.
 */
export interface Rig {
  topology: Topology;
  sipServer: SipServer;
  carrier: SippProcess;
  sipTarget: string;
  /** The edge process connected now. */
  edge: EdgeProcess;
  gated: boolean;
  /** Every edge process started so far, in order (their .cpuprofile files with --profile). */
  edges: EdgeProcess[];
  /** Replaces the edge by a freshly started process (gating on or off), connected and with a replica in sync. */
  useEdge(gated: boolean, label?: string): Promise<void>;
  /** Stops the connected edge (with --profile, it writes its .cpuprofile on the way out). */
  stopEdge(): Promise<void>;
  stop(): Promise<void>;
}

export interface RigOptions {
  sentinels: number;
  logger: Logger;
  /** The run directory: edge.log, engine.log, the edges' config files and profiles. */
  runDir: string;
  /** Run the edge with node --cpu-prof. */
  cpuProfile: boolean;
  /** The edge's local copy on (the product's default) or off. */
  localCopy: boolean;
}

export async function startRig(options: RigOptions): Promise<Rig> {
  const { logger } = options;
  const stops: (() => Promise<unknown>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => logger.warn({ err }, 'bench: stop failed'));
    stops.length = 0;
  };
  try {
    const topology = await startTopology({ replicas: 2, sentinels: options.sentinels, logger });
    stops.push(() => topology.stop());
    const sipServer = await startSipServer({ runDir: options.runDir });
    stops.push(() => sipServer.stop());
    const carrier = await startListeningSipp({ scenario: 'uas-answer', calls: 0, timeoutMs: 0, traceMessages: false });
    stops.push(() => carrier.stop());

    // The product's defaults, plus the X-Credit-Decision header so the runner can tell answers
    // served from the stale cache (the same header in both arms; routed calls never carry it).
    const configFor = (gated: boolean) => ({
      node_id: 'edge-bench',
      log_level: 'info',
      sip: { server: sipServer.control },
      redis: { replicas: topology.replicas.map((r) => ({ name: r.name, host: r.host, port: r.port })) },
      routes: { default: [`sip:127.0.0.1:${carrier.port}`] },
      decision_header: true,
      bypass_gating: !gated,
      local_copy: { enabled: options.localCopy },
    });

    let edge: EdgeProcess | undefined;
    const edges: EdgeProcess[] = [];
    // After stop() (the end, a failure, the watchdog), a run still unwinding must not start an edge.
    let stopped = false;
    const stopEdge = async () => {
      const e = edge;
      edge = undefined;
      await e?.stop();
    };
    const rig: Rig = {
      topology,
      sipServer,
      carrier,
      sipTarget: sipServer.sipTarget,
      get edge() {
        if (!edge) throw new Error('bench rig: no edge running');
        return edge;
      },
      gated: true,
      edges,
      async useEdge(gated, label) {
        await stopEdge();
        if (stopped) throw new Error('bench rig: stopped');
        const next = await startEdgeProcess({
          config: configFor(gated),
          gated,
          label: label ?? `${edges.length + 1}-${gated ? 'gated' : 'ungated'}`,
          runDir: options.runDir,
          cpuProfile: options.cpuProfile,
        });
        edges.push(next);
        if (stopped) {
          await next.stop();
          throw new Error('bench rig: stopped');
        }
        edge = next;
        rig.gated = gated;
        logger.info({ pid: next.pid, gated, admin: next.adminUrl }, 'bench: edge process ready');
      },
      stopEdge,
      stop: async () => {
        stopped = true;
        await stopEdge().catch((err: unknown) => logger.warn({ err }, 'bench: edge stop failed'));
        await stopAll();
      },
    };
    return rig;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
