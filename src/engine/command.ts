import { Command, InvalidArgumentError } from 'commander';
import { createLogger } from '../log.js';
import { startEngine } from './index.js';
import { parseHostPort } from '../config/host-port.js';

/**
 * `credit-edge-dev engine`: runs the embedded SIP engine on its own, for the demo, SIPp load tests and
 * apps started separately. A development engine: production runs drachtio-server.
 */

function hostPort(value: string): { host: string; port: number } {
  try {
    return parseHostPort(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function registerEngineCommand(program: Command): void {
  program
    .command('engine')
    .description('run the embedded drachtio-compatible SIP engine (development; production uses drachtio-server)')
    .option('--sip <host:port>', 'SIP over UDP and TCP', hostPort, { host: '127.0.0.1', port: 5060 })
    .option('--control <host:port>', 'drachtio wire protocol for apps', hostPort, { host: '127.0.0.1', port: 9022 })
    .option('--secret <secret>', 'shared secret for apps (default: $DRACHTIO_SECRET)')
    .option('--no-cdrs', 'do not send cdr:* events')
    .option('--t1 <ms>', 'SIP Timer T1 in ms', (v) => Number(v))
    .action(async (opts: { sip: { host: string; port: number }; control: { host: string; port: number }; secret?: string; cdrs: boolean; t1?: number }) => {
      const secret = opts.secret ?? process.env.DRACHTIO_SECRET;
      if (!secret) throw new Error('a secret is required: --secret or DRACHTIO_SECRET');
      const logger = createLogger();
      const engine = await startEngine({
        sip: opts.sip,
        control: { ...opts.control, secret },
        cdrs: opts.cdrs,
        logger,
        ...(opts.t1 ? { timers: { t1: opts.t1 } } : {}),
      });
      process.stdout.write(`engine: sip ${engine.sipHost}:${engine.sipPort} (udp+tcp), control port ${engine.controlPort}\n`);
      const shutdown = () => {
        void engine.stop().then(() => process.exit(0));
      };
      process.once('SIGINT', shutdown);
      process.once('SIGTERM', shutdown);
    });
}
