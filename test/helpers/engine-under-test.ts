import { randomBytes } from 'node:crypto';
import { startEngine, type Engine } from '../../src/engine/index.js';
import { createLogger, silentLogger } from '../../src/log.js';

/**
 * The SIP engine an end-to-end test talks to. When the environment names an external
 * drachtio-server (DRACHTIO_HOST, DRACHTIO_PORT, DRACHTIO_SECRET for apps; DRACHTIO_SIP=host:port
 * where SIPp sends calls), that one; otherwise the embedded engine on free ports. The tests are
 * the same either way, which is how the embedded engine is held to the real one.
 *
 * Against an external server the test files run one at a time (vitest.config.ts does it when
 * DRACHTIO_HOST is set): a shared server spreads INVITEs over every connected app.
 */

export interface EngineUnderTest {
  external: boolean;
  control: { host: string; port: number; secret: string };
  sip: { host: string; port: number };
  /** host:port for SIPp's remote argument. */
  sipTarget: string;
  stop(): Promise<void>;
}

export interface EngineUnderTestOptions {
  /** Timer T1 for the embedded engine (ms); ignored for an external server. */
  t1?: number;
}

export async function engineUnderTest(opts: EngineUnderTestOptions = {}): Promise<EngineUnderTest> {
  const env = process.env;
  if (env.DRACHTIO_HOST) {
    const sip = (env.DRACHTIO_SIP ?? `${env.DRACHTIO_HOST}:5060`).split(':');
    const sipHost = sip[0]!;
    const sipPort = Number(sip[1] ?? 5060);
    return {
      external: true,
      control: { host: env.DRACHTIO_HOST, port: Number(env.DRACHTIO_PORT ?? 9022), secret: env.DRACHTIO_SECRET ?? 'cymru' },
      sip: { host: sipHost, port: sipPort },
      sipTarget: `${sipHost}:${sipPort}`,
      stop: async () => {},
    };
  }
  const secret = randomBytes(12).toString('hex');
  const engine: Engine = await startEngine({
    sip: { host: '127.0.0.1', port: 0 },
    control: { host: '127.0.0.1', port: 0, secret },
    cdrs: true,
    logger: env.ENGINE_LOG ? createLogger({ level: env.ENGINE_LOG }) : silentLogger,
    ...(opts.t1 ? { timers: { t1: opts.t1 } } : {}),
  });
  return {
    external: false,
    control: { host: '127.0.0.1', port: engine.controlPort, secret },
    sip: { host: engine.sipHost, port: engine.sipPort },
    sipTarget: `${engine.sipHost}:${engine.sipPort}`,
    stop: () => engine.stop(),
  };
}
