import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { startCli, type CliProcess } from './cli-process.js';

/**
 * The SIP server of a benchmark run, in its own process: an external drachtio-server when the
 * environment names one (DRACHTIO_HOST, DRACHTIO_PORT, DRACHTIO_SECRET for apps; DRACHTIO_SIP =
 * host:port where SIPp sends calls; as test/helpers/engine-under-test.ts reads them), otherwise
 * the embedded engine run as `credit-edge-dev engine` on free ports. The external server is not ours:
 * no PID, no CPU figures, never stopped.
 */

export interface SipServer {
  /** What it is, for the summary. */
  kind: 'embedded engine (credit-edge-dev engine)' | 'external drachtio-server';
  control: { host: string; port: number; secret: string };
  /** host:port for SIPp's remote argument. */
  sipTarget: string;
  /** Our process (the embedded engine); undefined for an external server. */
  pid?: number;
  stop(): Promise<void>;
}

export async function startSipServer(o: { runDir: string }): Promise<SipServer> {
  const env = process.env;
  if (env.DRACHTIO_HOST) {
    const [host, port] = (env.DRACHTIO_SIP ?? `${env.DRACHTIO_HOST}:5060`).split(':');
    return {
      kind: 'external drachtio-server',
      control: { host: env.DRACHTIO_HOST, port: Number(env.DRACHTIO_PORT ?? 9022), secret: env.DRACHTIO_SECRET ?? 'cymru' },
      sipTarget: `${host}:${Number(port ?? 5060)}`,
      stop: async () => {},
    };
  }
  const secret = randomBytes(12).toString('hex');
  const log = path.join(o.runDir, 'engine.log');
  // The secret through the environment, not the command line (visible in ps).
  const engine: CliProcess = startCli({ name: 'engine', dev: true, args: ['engine', '--sip', '127.0.0.1:0', '--control', '127.0.0.1:0'], stdoutFile: log, stderrFile: log, env: { DRACHTIO_SECRET: secret } });
  try {
    const m = await engine.waitForOutput(/^engine: sip (\S+):(\d+) \(udp\+tcp\), control port (\d+)$/m, 15_000);
    return {
      kind: 'embedded engine (credit-edge-dev engine)',
      control: { host: '127.0.0.1', port: Number(m[3]), secret },
      sipTarget: `${m[1]}:${m[2]}`,
      pid: engine.pid,
      stop: () => engine.stop(),
    };
  } catch (err) {
    await engine.stop();
    throw err;
  }
}
