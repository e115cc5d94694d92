import { addEdgeRoutes } from '../admin/edge-routes.js';
import { startAdmin, type AdminServer } from '../admin/server.js';
import { loadConfig } from '../config/load.js';
import { configReloader, reloadRoute, type ReloadOutcome } from '../config/reload.js';
import type { Config } from '../config/schema.js';
import { startEngine, type Engine } from '../engine/index.js';
import { createLogger, stdoutDestination, type Logger } from '../log.js';
import { applyConfig } from './reconfigure.js';
import { startEdge, type RunningEdge } from './start.js';
import { splitHostPort } from '../config/host-port.js';

/**
 * `credit-edge edge` as a unit: the config file, the embedded SIP engine when enabled, the edge,
 * the admin API, and reloads (SIGHUP, POST /reload). A reload re-reads the same file: a valid one
 * takes effect in place (src/edge/reconfigure.ts), an invalid one is refused and logged, and the
 * edge keeps the config it had.
 */

export type { ReloadOutcome } from '../config/reload.js';

export interface EdgeServiceOptions {
  /** Config file; undefined: config/credit-edge.yaml if present, else the embedded defaults. */
  file?: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Reload on SIGHUP (the CLI); tests call reload() instead. */
  handleSighup?: boolean;
}

export interface EdgeService {
  edge: RunningEdge;
  engine?: Engine;
  admin: AdminServer;
  /** The file in use, or undefined on embedded defaults. */
  file?: string;
  config(): Config;
  reload(): Promise<ReloadOutcome>;
  /**
   * Stops taking calls (shutting-down 503s, /readyz 503) and resolves once the calls in progress
   * have ended, or after `drainMs` (shutdown.drain_ms) with how many were left.
   */
  drain(drainMs?: number): Promise<{ left: number }>;
  stop(): Promise<void>;
}

export async function startEdgeService(options: EdgeServiceOptions = {}): Promise<EdgeService> {
  const env = options.env ?? process.env;
  const loaded = loadConfig(options.file, env);
  const config = loaded.config;
  const logger = options.logger ?? createLogger({ level: config.log_level }, stdoutDestination(config.log_flush_ms));
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: unknown) => logger.warn({ err }, 'stop failed'));
  };

  try {
    let engine: Engine | undefined;
    let sipServer = config.sip.server;
    if (config.sip.embedded_engine.enabled) {
      engine = await startEngine({
        sip: splitHostPort(config.sip.embedded_engine.listen),
        control: { host: sipServer.host, port: sipServer.port, secret: sipServer.secret },
        cdrs: true,
        logger,
      });
      stops.push(() => engine!.stop());
      // Port 0 in the config means "any free one": connect to the one the engine took.
      sipServer = { ...sipServer, port: engine.controlPort };
    }

    const edge = startEdge({ ...config, sip: { ...config.sip, server: sipServer } }, logger.child({ component: 'edge' }));
    stops.push(() => edge.stop());
    const reloader = configReloader({ file: loaded.file, env, initial: config, logger, apply: (current, next) => applyConfig(edge, current, next, logger), count: (result) => edge.metrics.reloads.inc({ result }) });

    const admin = await startAdmin({ listen: config.admin.listen, token: () => reloader.config().admin.token, logger: logger.child({ component: 'admin' }) });
    stops.push(() => admin.stop());
    admin.addRegistry(edge.metrics.registry);
    addEdgeRoutes(admin, edge, () => reloader.config());

    const reload = () => reloader.reload();
    admin.route('POST', /^\/reload$/, () => reloadRoute(reload));

    const onSighup = () => {
      logger.info('SIGHUP: reloading the config');
      void reload();
    };
    if (options.handleSighup) {
      process.on('SIGHUP', onSighup);
      stops.push(async () => void process.off('SIGHUP', onSighup));
    }

    return {
      edge,
      engine,
      admin,
      ...(loaded.file !== undefined && { file: loaded.file }),
      config: () => reloader.config(),
      reload,
      drain: (drainMs = reloader.config().shutdown.drain_ms) => edge.drain(drainMs),
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
