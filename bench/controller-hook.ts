import { parseConfig } from '../src/config/load.js';
import type { Topology } from '../src/dev/topology.js';
import type { Logger } from '../src/log.js';

/**
 * The failover and data-loss profiles run the credit controller (src/control/start.ts, its
 * defaults, cuts on) beside the edge: any call the network ends there is a funded call cut.
 * The module is loaded by a specifier held in a variable, so the benchmark still builds and
 * runs without it; its status goes into the summary. The failover target "writes nothing to
 * the demoted master" needs a count of writes by master from the controller; until then the
 * summary's target says `met: null`.
 */

export interface ControllerHandle {
  status(): string;
  stop(): Promise<void>;
}

type StartController = (
  config: unknown,
  logger: Logger,
  options: { sentinels: { host: string; port: number }[]; masterName: string },
) => ControllerHandle;

export async function startControllerIfAvailable(o: { topology: Topology; logger: Logger }): Promise<{ handle?: ControllerHandle; status: string }> {
  const specifier = '../src/control/start.js';
  let mod: { startController?: StartController };
  try {
    mod = (await import(specifier)) as { startController?: StartController };
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' || /Cannot find module|Failed to load url/i.test(String(err))) {
      return { status: 'not running: src/control/start.js does not exist' };
    }
    throw err;
  }
  if (typeof mod.startController !== 'function') return { status: 'not running: src/control/start.js exports no startController' };
  // The controller's defaults, pointed at this topology's Sentinels.
  const config = parseConfig('{}', '(bench controller)');
  const handle = mod.startController(config, o.logger.child({ component: 'controller' }), {
    sentinels: o.topology.sentinelAddresses(),
    masterName: o.topology.masterName,
  });
  return { handle, status: 'running' };
}
