import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { createLogger, type Logger } from '../log.js';
import { formatTopology } from './describe.js';
import { demoCallPath } from './demo-call-path.js';
import { packageRoot } from './sipp.js';
import { startTopology, type Topology } from './topology.js';
import { parseHostPort } from '../config/host-port.js';

/**
 * `credit-edge demo`: a whole local system on 127.0.0.1: the Redis topology (master, replicas,
 * Sentinels) seeded with demo accounts, then the DemoServices (the SIP engine, a SIPp carrier and
 * the edge; the credit controller). Human summary on stderr, pino JSON logs on stdout, orderly
 * stop on Ctrl-C/SIGTERM.
 */

export interface DemoOptions {
  accounts: string;
  replicas: number;
  sentinels: number;
  /** Seconds between two state printouts. */
  interval: number;
  /** Stop by itself after this many seconds (tests); undefined runs until a signal. */
  for?: number;
  /** Where callers send SIP; undefined runs the Redis topology only. */
  sip?: { host: string; port: number } | false;
}

/** What every demo service gets: the running topology and the logger. */
export interface DemoContext {
  topology: Topology;
  logger: Logger;
  options: DemoOptions;
}

/** One part of the demo, started in list order after the topology, stopped in reverse. */
export interface DemoService {
  name: string;
  start(context: DemoContext): Promise<RunningService>;
}

export interface RunningService {
  stop(): Promise<void>;
  /** One line for the periodic summary. */
  status?(): string;
}

/** The parts after the topology, in start order. */
function demoServices(options: DemoOptions): DemoService[] {
  return options.sip ? [demoCallPath(options.sip)] : [];
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

function hostPort(value: string): { host: string; port: number } {
  try {
    return parseHostPort(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the whole product locally: Redis (master, replicas, Sentinels) with demo accounts, the SIP engine, a carrier and the edge')
    .option('--accounts <file>', 'accounts seed file (YAML or JSON)', path.join(packageRoot(), 'config', 'demo-accounts.yaml'))
    .option('--replicas <n>', 'Redis replicas', count, 2)
    .option('--sentinels <n>', 'Sentinels (0: no failover)', count, 3)
    .option('--interval <seconds>', 'seconds between state printouts', seconds, 5)
    .option('--for <seconds>', 'stop by itself after this many seconds', seconds)
    .option('--sip <host:port>', 'where callers send SIP (UDP and TCP)', hostPort, { host: '127.0.0.1', port: 5060 })
    .option('--no-sip', 'run the Redis topology only')
    .action(async (options: DemoOptions) => {
      await runDemo(options);
    });
}

/** Runs the demo until SIGINT/SIGTERM or `options.for` seconds, then stops everything it started. */
export async function runDemo(options: DemoOptions, logger: Logger = createLogger()): Promise<void> {
  const log = logger.child({ component: 'demo' });
  const say = (text: string) => process.stderr.write(text + '\n');

  let requestStop: (why: string) => void = () => undefined;
  const stopRequested = new Promise<string>((resolve) => (requestStop = resolve));
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // A second signal while stopping means "now": the exit hook still kills every child.
    if (++signals > 1) process.exit(130);
    requestStop(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const forTimer = options.for === undefined ? undefined : setTimeout(() => requestStop(`--for ${options.for}`), options.for * 1000);

  const running: { name: string; service: RunningService }[] = [];
  let printer: NodeJS.Timeout | undefined;
  try {
    say(`demo: starting Redis (1 master, ${options.replicas} replicas, ${options.sentinels} sentinels)...`);
    const topology = await startTopology({ replicas: options.replicas, sentinels: options.sentinels, logger });
    running.push({ name: 'redis topology', service: { stop: () => topology.stop() } });
    await topology.seedFile(options.accounts);
    say(`demo: seeded accounts from ${options.accounts}`);

    const context: DemoContext = { topology, logger, options };
    for (const starter of demoServices(options)) {
      running.push({ name: starter.name, service: await starter.start(context) });
    }

    const print = async () => {
      const description = await topology.describe();
      log.info({ topology: description }, 'topology state');
      const statuses = running.flatMap(({ name, service }) => (service.status ? [`  ${name}: ${service.status()}`] : []));
      say(['', formatTopology(description), ...statuses].join('\n'));
    };
    await print();
    say(`demo: running${options.for ? ` for ${options.for} s` : ''}; Ctrl-C stops everything`);
    printer = setInterval(() => void print().catch((err: unknown) => log.warn({ err }, 'describe failed')), options.interval * 1000);

    const why = await stopRequested;
    say(`demo: stopping (${why})...`);
  } finally {
    if (printer) clearInterval(printer);
    if (forTimer) clearTimeout(forTimer);
    for (const { name, service } of running.reverse()) {
      try {
        await service.stop();
      } catch (err) {
        log.error({ err, service: name }, 'stop failed');
      }
    }
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  say('demo: stopped');
}
