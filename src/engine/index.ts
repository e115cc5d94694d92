import { silentLogger, type Logger } from '../log.js';
import { freePort } from './free-port.js';
import { Cdrs } from './cdr.js';
import { ControlServer } from './control.js';
import { EngineCore } from './core.js';
import { DEFAULT_TIMERS, TransactionLayer, type Timers } from './transactions.js';
import { Transport } from './transport.js';

/**
 * The embedded, drachtio-compatible SIP engine: a development stand-in for drachtio-server.
 * drachtio-srf apps connect to it exactly as to drachtio-server (host, port, secret); it speaks SIP
 * over UDP and TCP for the subset a routing edge uses (requests to the app, responses from it,
 * stateful proxying with record-route, CANCEL, CDR events). Production runs drachtio-server.
 */

export interface EngineOptions {
  /** SIP listen address; UDP and TCP share the port. port 0 picks a free one. */
  sip: { host: string; port: number };
  /** drachtio wire-protocol listener for apps. port 0 picks a free one. */
  control: { host: string; port: number; secret: string };
  /** Send cdr:attempt/start/stop to subscribed apps (drachtio-server's `<cdrs>true</cdrs>`). Default true. */
  cdrs?: boolean;
  logger?: Logger;
  /** RFC 3261 timer overrides (ms): t1, t2, t4, timerC. Tests shorten them. */
  timers?: Partial<Timers>;
  /** Largest SIP message accepted on TCP, bytes. Default 65535. */
  maxMessageBytes?: number;
  /**
   * Proxy failover: by default the next target is tried after 5xx, 408 or a timeout; true tries it
   * after any non-2xx final, as drachtio-server does.
   */
  failoverOnAnyFailure?: boolean;
}

export interface Engine {
  readonly sipHost: string;
  readonly sipPort: number;
  readonly controlPort: number;
  stop(): Promise<void>;
}

export async function startEngine(options: EngineOptions): Promise<Engine> {
  const logger = (options.logger ?? silentLogger).child({ component: 'engine' });
  const timers: Timers = { ...DEFAULT_TIMERS, ...options.timers };
  const sipHost = options.sip.host;

  const transport = await startTransport(sipHost, options.sip.port, logger, options.maxMessageBytes ?? 65_535);

  const control = new ControlServer({
    host: options.control.host,
    port: options.control.port,
    secret: options.control.secret,
    logger,
    hostports: () => `udp/${sipHost}:${transport.port},tcp/${sipHost}:${transport.port}`,
  });
  try {
    await control.start();
  } catch (err) {
    await transport.stop();
    throw err;
  }
  const tx = new TransactionLayer(transport, timers);
  const cdrs = new Cdrs(control, options.cdrs ?? true);
  const core = new EngineCore(
    { host: sipHost, port: transport.port, logger, failoverOnAnyFailure: options.failoverOnAnyFailure ?? false },
    transport,
    tx,
    control,
    cdrs,
  );
  logger.info({ sip: `${sipHost}:${transport.port}`, control: `${options.control.host}:${control.port}`, cdrs: cdrs.enabled }, 'engine started');

  let stopped: Promise<void> | undefined;
  return {
    sipHost,
    sipPort: transport.port,
    controlPort: control.port,
    stop() {
      stopped ??= (async () => {
        core.stop();
        tx.stopAll();
        await Promise.all([control.stop(), transport.stop()]);
        logger.info('engine stopped');
      })();
      return stopped;
    },
  };
}

/**
 * SIP over UDP and TCP on one port number. Asked for "any" (0), it picks one free for both; as
 * another process may take it before we bind (tests run in parallel), it tries a few.
 */
async function startTransport(host: string, port: number, logger: Logger, maxMessageBytes: number): Promise<Transport> {
  for (let attempt = 1; ; attempt++) {
    const transport = new Transport({ host, port: port === 0 ? await freePort({ udp: true, host }) : port, logger, maxMessageBytes });
    try {
      await transport.start();
      return transport;
    } catch (err) {
      await transport.stop().catch(() => undefined);
      if (port !== 0 || attempt === 5 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
}
