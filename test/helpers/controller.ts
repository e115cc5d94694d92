import { CALL_KEY_COUNT, CALL_START_LUA, callStartArgs, type CallRecord } from '../../src/calls/records.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { startController, type RunningController } from '../../src/control/start.js';
import type { Topology } from '../../src/dev/topology.js';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';
import { accountKey, edgeAliveKey } from '../../src/redis/keys.js';

/**
 * A controller config for this topology, with short timings so rounds, leases, liveness and the
 * reconciliation sweep (which picks up balances edited directly on the master) play out in a test's seconds.
 */
export function controllerConfig(topology: Topology, name: string, controller: Record<string, unknown> = {}): Config {
  return parseConfig(JSON.stringify(controllerConfigInput(topology, name, controller)), '(test controller)');
}

/** What controllerConfig parses: the file an operator would write (JSON is YAML). */
export function controllerConfigInput(topology: Topology, name: string, controller: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    redis: { sentinel: { master_name: topology.masterName, addresses: topology.sentinelAddresses().map((s) => `${s.host}:${s.port}`) } },
    controller: { name, round_ms: 200, lease_ms: 1000, master_timeout_ms: 300, wait_replicas: 1, wait_timeout_ms: 250, dead_edge_grace_ms: 500, sweep_ms: 500, ...controller },
  };
}

/** A running controller on this topology (see controllerConfig). CONTROLLER_LOG=debug shows logs. */
export function controllerOn(topology: Topology, name: string, controller: Record<string, unknown> = {}): RunningController {
  return startController(controllerConfig(topology, name, controller), testLogger());
}

export function testLogger(): Logger {
  return process.env.CONTROLLER_LOG ? createLogger({ level: process.env.CONTROLLER_LOG }) : silentLogger;
}

/** Writes call records straight onto the master, as an edge would. */
export async function writeCalls(topology: Topology, records: CallRecord[]): Promise<void> {
  const address = await topology.currentMaster();
  const client = (topology.nodeAt(address) ?? topology.master).client;
  for (const r of records) {
    // The edge's liveness, unless the test plays a dead edge (it sets its own, short, key first).
    await client.set(edgeAliveKey(r.node), r.instance, 'PX', 120_000, 'NX');
    await client.eval(CALL_START_LUA, CALL_KEY_COUNT, ...callStartArgs(r));
  }
}

export function callRecord(account: string, callId: string, minutesAgo: number, extra: Partial<CallRecord> = {}): CallRecord {
  return { callId, account, start: Date.now() - minutesAgo * 60_000, node: 'edge-t', instance: 'inst-t', ...extra };
}

export async function masterHash(topology: Topology, account: string): Promise<Record<string, string>> {
  const address = await topology.currentMaster();
  return (topology.nodeAt(address) ?? topology.master).client.hgetall(accountKey(account));
}

export async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
