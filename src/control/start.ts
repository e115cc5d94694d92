import { randomBytes } from 'node:crypto';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { CreditController } from './controller.js';
import { FencedMaster, type SentinelAddress } from './master.js';
import { ControllerMetrics } from './metrics.js';
import { splitHostPort } from '../config/host-port.js';
import { keyUnder, splitChanges, type ApplyResult } from '../config/reload.js';

export interface RunningController {
  controller: CreditController;
  master: FencedMaster;
  metrics: ControllerMetrics;
  /** One line for status printouts. */
  status(): string;
  stop(): Promise<void>;
}

/** What a controller reload changes in place: the switch for cutting calls (off, dry run, grace). */
const LIVE = ['controller.cut_calls'];
/** The sections the controller runs with: a change elsewhere in a shared file is the edge's business. */
const OWN = ['log_level', 'log_flush_ms', 'redis', 'controller', 'admin'];

function cutCallsOf(config: Config) {
  const { cut_calls: c } = config.controller;
  return { enabled: c.enabled, dryRun: c.dry_run, graceMs: c.grace_ms };
}

/** Applies a reloaded config to a running controller (src/config/reload.ts). */
export function reconfigureController(running: RunningController, current: Config, next: Config): ApplyResult {
  const result = splitChanges(current, next, LIVE, (key) => keyUnder(key, OWN));
  if (result.applied.includes('controller.cut_calls')) running.controller.setCutCalls(cutCallsOf(next));
  return result;
}

export interface StartControllerOptions {
  /** Overrides config.redis.sentinel (e.g. a dev topology's sentinelAddresses() and masterName). */
  sentinels?: SentinelAddress[];
  masterName?: string;
  metrics?: ControllerMetrics;
}

/** Starts the credit controller from a validated config; it runs rounds until stop(). */
export function startController(config: Config, logger: Logger, options: StartControllerOptions = {}): RunningController {
  const c = config.controller;
  const log = logger.child({ component: 'controller', controller: c.name });
  const metrics = options.metrics ?? new ControllerMetrics();
  const master = new FencedMaster({
    masterName: options.masterName ?? config.redis.sentinel.master_name,
    sentinels: options.sentinels ?? config.redis.sentinel.addresses.map(splitHostPort),
    ...(config.redis.password !== undefined && { password: config.redis.password }),
    commandTimeoutMs: c.master_timeout_ms,
    waitReplicas: c.wait_replicas,
    waitTimeoutMs: c.wait_timeout_ms,
    connectionName: `credit-controller-${c.name}`,
    logger: log,
  });
  const controller = new CreditController(
    master,
    {
      name: c.name,
      holderId: `${c.name}/${randomBytes(4).toString('hex')}`,
      roundMs: c.round_ms,
      leaseMs: c.lease_ms,
      deadEdgeGraceMs: c.dead_edge_grace_ms,
      auditMaxLen: c.audit_max_len,
      sweepMs: c.sweep_ms,
      sweepFullEvery: c.sweep_full_every,
      maxAccountsPerRound: c.max_accounts_per_round,
      maxStaleCallsPerRound: c.max_stale_calls_per_round,
      breaker: { maxBlocks: c.breaker.max_blocks, maxShare: c.breaker.max_share, minAccountsForShare: c.breaker.min_accounts, windowMs: c.breaker.window_ms },
      cutCalls: cutCallsOf(config),
    },
    log,
    metrics,
  );
  controller.start();
  log.info({ roundMs: c.round_ms, leaseMs: c.lease_ms, waitReplicas: c.wait_replicas, sweepMs: c.sweep_ms }, 'credit controller started');
  return {
    controller,
    master,
    metrics,
    status: () => controller.status(),
    async stop() {
      await controller.stop();
      await master.close();
      log.info('credit controller stopped');
    },
  };
}
