import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { pino, type DestinationStream } from 'pino';
import { parseHostPort } from '../config/host-port.js';
import { createLogger, type Logger } from '../log.js';
import { placeDemoCalls } from './demo-calls.js';
import { formatAnswers, formatPlaces, formatStatus, formatTryNext, type DemoPlaces, type DemoStatus } from './demo-screen.js';
import { localSystemConfig, portOr, startLocalSystem, type HostPort, type LocalSystem } from './demo-system.js';
import { onProcessExit } from './exit-cleanup.js';
import { packageRoot, scenarioPath } from './sipp.js';
import { startTopology, type Topology } from './topology.js';

/**
 * `credit-edge-dev demo`: the whole product on 127.0.0.1, run as production runs it: a Redis topology
 * (master, replicas, Sentinels) seeded with the demo accounts; a config file written for it; the
 * edge (with the embedded SIP engine) and the credit controller started from that file, each with
 * its admin API and /metrics; a SIPp UAS as the carrier. It places one call per demo account, then
 * runs until Ctrl-C/SIGTERM and stops everything it started.
 *
 * The console is for a person: where things listen, the answers, what to try, a status that
 * refreshes. The components' pino JSON logs go to a file in the run dir (kept after the stop).
 * With --json there is no human text: the logs, the answers and the status go to stdout as JSON.
 */

export interface DemoOptions {
  accounts: string;
  replicas: number;
  sentinels: number;
  /** Seconds between two status refreshes. */
  interval: number;
  /** Stop by itself after this many seconds; undefined runs until a signal. */
  for?: number;
  /** Where callers send SIP; false runs the Redis topology only. */
  sip?: HostPort | false;
  /** The edge's admin API; default 127.0.0.1:8080, or a free port when that one is taken. */
  admin?: HostPort;
  /** The controller's admin API; default 127.0.0.1:8081, or a free port when that one is taken. */
  controllerAdmin?: HostPort;
  /** Machine output: JSON lines on stdout, no human text, no log file. */
  json?: boolean;
}

/** Where the demo writes; tests pass their own. */
export interface DemoIO {
  /** Human text (default: stdout). */
  out: (text: string) => void;
  /** Rewrite the status in place (a terminal) rather than print it again. */
  tty: boolean;
  /** Where JSON goes with --json (default: stdout). */
  json: DestinationStream;
  /** When given, the demo stops once this resolves (tests drive the running demo from it). */
  until?: (places: DemoPlaces) => Promise<void>;
}

function defaultIO(): DemoIO {
  return { out: (text) => void process.stdout.write(text), tty: process.stdout.isTTY === true, json: pino.destination(1) };
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 16) throw new InvalidArgumentError('expected an integer from 0 to 16');
  return n;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
  return n;
}

function hostPort(value: string): HostPort {
  try {
    return parseHostPort(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the whole product locally: Redis (master, replicas, Sentinels) with demo accounts, the edge and the controller from a config file, a carrier')
    .option('--accounts <file>', 'accounts seed file (YAML or JSON)', path.join(packageRoot(), 'config', 'demo-accounts.yaml'))
    .option('--replicas <n>', 'Redis replicas', count, 2)
    .option('--sentinels <n>', 'Sentinels (0: no failover, no controller)', count, 3)
    .option('--interval <seconds>', 'seconds between status refreshes', seconds, 5)
    .option('--for <seconds>', 'stop by itself after this many seconds', seconds)
    .addOption(new Option('--sip <host:port>', 'where callers send SIP (UDP and TCP)').argParser(hostPort).default({ host: '127.0.0.1', port: 5060 }, '127.0.0.1:5060'))
    .option('--no-sip', 'run the Redis topology only')
    .option('--admin <host:port>', "the edge's admin API (default 127.0.0.1:8080, or a free port if taken)", hostPort)
    .option('--controller-admin <host:port>', "the controller's admin API (default 127.0.0.1:8081, or a free port if taken)", hostPort)
    .option('--json', 'machine output: JSON lines on stdout (logs, answers, status), no human text')
    .action(async (options: DemoOptions) => {
      await runDemo(options);
    });
}

/** Runs the demo until SIGINT/SIGTERM, `options.for` seconds or `io.until`, then stops everything it started. */
export async function runDemo(options: DemoOptions, io: DemoIO = defaultIO()): Promise<void> {
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'credit-edge-demo-'));
  const logFile = path.join(runDir, 'demo.log');
  const logger: Logger = options.json ? createLogger({}, io.json) : createLogger({}, pino.destination({ dest: logFile, sync: true }));
  const log = logger.child({ component: 'demo' });
  const say = (text: string) => {
    if (!options.json) io.out(text + '\n');
  };

  let requestStop: (why: string) => void = () => undefined;
  const stopRequested = new Promise<string>((resolve) => (requestStop = resolve));
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // A second signal while stopping means "now": the exit hooks still kill every child.
    if (++signals > 1) process.exit(130);
    requestStop(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const forTimer = options.for === undefined ? undefined : setTimeout(() => requestStop(`--for ${options.for}`), options.for * 1000);

  let topology: Topology | undefined;
  let system: LocalSystem | undefined;
  let refresher: NodeJS.Timeout | undefined;
  let untilFailed: unknown;
  const configFile = path.join(runDir, 'credit-edge.yaml');
  const forgetConfig = onProcessExit(() => fs.rmSync(configFile, { force: true }));
  try {
    const parts = options.sip ? `, the SIP engine, a carrier, the edge${options.sentinels > 0 ? ' and the controller' : ''}` : '';
    say(`credit-edge demo: starting Redis (1 master, ${options.replicas} replicas, ${options.sentinels} sentinels)${parts}...`);
    topology = await startTopology({ replicas: options.replicas, sentinels: options.sentinels, logger });
    await topology.seedFile(options.accounts);
    log.info({ accounts: options.accounts }, 'demo accounts seeded');

    if (options.sip) {
      system = await startLocalSystem({
        topology,
        dir: runDir,
        sip: options.sip,
        edgeAdmin: options.admin ?? (await portOr({ host: '127.0.0.1', port: 8080 })),
        controllerAdmin: options.controllerAdmin ?? (await portOr({ host: '127.0.0.1', port: 8081 })),
        logger,
      });
    } else {
      // Redis only: the config still lets the account commands find the master through Sentinel.
      fs.writeFileSync(configFile, localSystemConfig({ topology }), { mode: 0o600 });
    }

    const places = placesOf(topology, system, { runDir, configFile, logFile: options.json ? '(stdout, --json)' : logFile });
    log.info({ places }, 'demo ready');
    say(formatPlaces(places) + '\n');
    if (system) {
      const answers = await placeDemoCalls(system.sipTarget, logger);
      say(formatAnswers(answers) + '\n');
    }
    say(formatTryNext(places) + '\n');

    let shownLines = 0;
    const refresh = async () => {
      const status = await statusOf(topology!, system, options.interval);
      log.info({ status }, 'demo status');
      let text = formatStatus(status);
      // On a terminal the status block is rewritten in place: up to its first line, clear below.
      // Lines are cut to the terminal's width, so none wraps and the block keeps its height.
      if (io.tty) text = fitWidth(text, process.stdout.columns || 200);
      if (io.tty && shownLines > 0 && !options.json) io.out(`\x1b[${shownLines}F\x1b[J`);
      say(text);
      shownLines = text.split('\n').length;
    };
    await refresh();
    refresher = setInterval(() => void refresh().catch((err: unknown) => log.warn({ err }, 'status failed')), options.interval * 1000);

    if (io.until) {
      void io.until(places).then(
        () => requestStop('done'),
        (err: unknown) => {
          untilFailed = err;
          requestStop('failed');
        },
      );
    }
    const why = await stopRequested;
    say(`credit-edge demo: stopping (${why})...`);
  } catch (err) {
    log.error({ err }, 'demo failed');
    say(`credit-edge demo: failed, stopping what it started; logs in ${logFile}`);
    throw err;
  } finally {
    if (refresher) clearInterval(refresher);
    if (forTimer) clearTimeout(forTimer);
    for (const [name, stop] of [
      ['edge, controller and carrier', () => system?.stop()],
      ['redis topology', () => topology?.stop()],
    ] as const) {
      try {
        await stop();
      } catch (err) {
        log.error({ err, part: name }, 'stop failed');
      }
    }
    fs.rmSync(configFile, { force: true });
    forgetConfig();
    if (options.json) fs.rmSync(runDir, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  log.info('demo stopped');
  say(`credit-edge demo: stopped; logs kept in ${logFile}`);
  if (untilFailed !== undefined) throw untilFailed;
}

function placesOf(topology: Topology, system: LocalSystem | undefined, files: Pick<DemoPlaces, 'runDir' | 'configFile' | 'logFile'>): DemoPlaces {
  const scenario = scenarioPath('demo-call');
  const relative = path.relative(process.cwd(), scenario);
  const admin = (a: { host: string; port: number }) => `http://${a.host}:${a.port}`;
  return {
    ...files,
    pid: process.pid,
    redis: {
      masterName: topology.masterName,
      master: topology.master.port,
      replicas: topology.replicas.map((r) => r.port),
      sentinels: topology.sentinelAddresses().map((s) => s.port),
    },
    ...(system && {
      sip: {
        target: system.sipTarget,
        carrierPort: system.carrier.port,
        edgeAdmin: admin(system.edge.admin),
        ...(system.controller && { controllerAdmin: admin(system.controller.admin) }),
        scenario: relative.startsWith('..') ? scenario : relative,
      },
    }),
  };
}

async function statusOf(topology: Topology, system: LocalSystem | undefined, intervalS: number): Promise<DemoStatus> {
  const status: DemoStatus = { at: new Date(), intervalS, topology: await topology.describe() };
  if (system) {
    const edge = system.edge.edge;
    const decisions = (await edge.metrics.decisions.get()).values.reduce((sum, v) => sum + v.value, 0);
    status.edge = {
      ready: edge.ready(),
      replicasInSync: edge.pool.inSync().length,
      replicas: edge.pool.replicas.length,
      calls: edge.calls.total,
      decisions,
      cached: edge.cache.size,
    };
    if (system.controller) status.controller = system.controller.running.status();
  }
  return status;
}

function fitWidth(text: string, columns: number): string {
  return text
    .split('\n')
    .map((line) => (line.length < columns ? line : line.slice(0, Math.max(columns - 2, 10)) + '…'))
    .join('\n');
}
