import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { EDGE_NODE_FLAGS } from '../src/edge/node-flags.js';
import { startCli } from './cli-process.js';
import { waitReady } from './edge-admin.js';

/**
 * The edge under measurement, run as production runs it: `node EDGE_NODE_FLAGS dist/src/cli.js
 * edge --config FILE` (`credit-edge edge`) in its own Node process (the embedded engine disabled
 * in that file), logging pino JSON at info to edge.log in the run directory, its admin API on a
 * free loopback port. With `cpuProfile`, Node's --cpu-prof writes a .cpuprofile into the run
 * directory when the process exits.
 */

export interface EdgeProcess {
  pid: number;
  gated: boolean;
  /** Base URL of its admin API (GET /metrics, /dataset, /readyz). */
  adminUrl: string;
  /** The .cpuprofile it writes on exit (with cpuProfile). */
  cpuProfileFile?: string;
  /** The config file it was started with (an operator's `credit-edge reload --config` reads it). */
  configFile: string;
  running(): boolean;
  /** SIGTERM (the edge drains its calls first), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL: a crash, nothing flushed or released. */
  kill(): Promise<void>;
}

export interface EdgeProcessOptions {
  /** The edge's config (written as a file the process reads); admin.listen and the engine are set here. */
  config: Record<string, unknown>;
  gated: boolean;
  /** Names the config file and the profile: edge-<label>.json, edge-<label>.cpuprofile. */
  label: string;
  runDir: string;
  cpuProfile: boolean;
  /** The admin API's address (default a free loopback port, read from the edge's output). */
  adminListen?: string;
  /** Names its log files: <logName>.log, <logName>.stderr.log (default 'edge'). */
  logName?: string;
}

/** Writes the edge's config file (edge-<label>.json in the run directory), as it starts from it; returns its path. */
export function writeEdgeConfig(o: Pick<EdgeProcessOptions, 'config' | 'label' | 'runDir' | 'adminListen'>): string {
  const configFile = path.join(o.runDir, `edge-${o.label}.json`);
  const config = { ...o.config, admin: { listen: o.adminListen ?? '127.0.0.1:0' }, sip: { ...(o.config.sip as object), embedded_engine: { enabled: false } } };
  // It holds the SIP server's secret: readable by this user only.
  writeFileSync(configFile, JSON.stringify(config, null, 2) + '\n', { mode: 0o600 });
  return configFile;
}

export async function startEdgeProcess(o: EdgeProcessOptions): Promise<EdgeProcess> {
  const configFile = writeEdgeConfig(o);
  const profileName = `edge-${o.label}.cpuprofile`;
  const edge = startCli({
    name: `edge ${o.label}`,
    args: ['edge', '--config', configFile],
    nodeFlags: [...EDGE_NODE_FLAGS, ...(o.cpuProfile ? ['--cpu-prof', '--cpu-prof-dir', o.runDir, '--cpu-prof-name', profileName] : [])],
    stdoutFile: path.join(o.runDir, `${o.logName ?? 'edge'}.log`),
    stderrFile: path.join(o.runDir, `${o.logName ?? 'edge'}.stderr.log`),
  });
  try {
    const m = await edge.waitForOutput(/admin (http:\/\/[^;\s]+)/, 20_000);
    const adminUrl = m[1]!;
    await waitReady(adminUrl, 30_000, () => edge.running).catch((err: Error) => {
      throw new Error(`edge ${o.label} (pid ${edge.pid}): ${err.message}: ${edge.tail()}`);
    });
    return {
      pid: edge.pid,
      gated: o.gated,
      adminUrl,
      ...(o.cpuProfile && { cpuProfileFile: path.join(o.runDir, profileName) }),
      configFile,
      running: () => edge.running,
      stop: (graceMs) => edge.stop(graceMs),
      kill: () => edge.kill(),
    };
  } catch (err) {
    await edge.stop();
    throw err;
  }
}
