import { startCallPath, type CallPath, type CallPathOptions } from '../../src/dev/call-path.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { createLogger, silentLogger, type Logger } from '../../src/log.js';
import { engineUnderTest, type EngineUnderTest } from './engine-under-test.js';
import { runSipp, type SippOptions, type SippResult, type TracedMessage } from './sipp.js';

/**
 * A whole local call path for end-to-end tests: a real Redis topology (no Sentinel), the engine
 * under test (embedded, or the drachtio-server named in the environment), a SIPp UAS as the
 * carrier, and the edge. EDGE_LOG=debug shows the edge's logs.
 */
export interface EdgeUnderTest {
  topology: Topology;
  engine: EngineUnderTest;
  path: CallPath;
  /** One call for `account` through the edge; resolves with SIPp's result. */
  call(account: string, opts?: Partial<SippOptions>): Promise<SippResult>;
  stop(): Promise<void>;
}

export async function edgeUnderTest(
  options: {
    config?: CallPathOptions['config'];
    seed?: Parameters<Topology['seed']>[0];
    /** Default 0; with Sentinels the edge records calls in progress on the master. */
    sentinels?: number;
    /** The edge's logger (default: silent, or EDGE_LOG=level to stdout). */
    logger?: Logger;
  } = {},
): Promise<EdgeUnderTest> {
  const topology = await startTopology({ replicas: 2, sentinels: options.sentinels ?? 0 });
  let engine: EngineUnderTest | undefined;
  try {
    await topology.seedFile('config/demo-accounts.yaml');
    if (options.seed) await topology.seed(options.seed);
    engine = await engineUnderTest();
    const logger = options.logger ?? (process.env.EDGE_LOG ? createLogger({ level: process.env.EDGE_LOG }) : silentLogger);
    const path = await startCallPath({
      topology,
      logger,
      external: { control: engine.control, sipTarget: engine.sipTarget },
      ...(options.config && { config: options.config }),
    });
    const eut: EdgeUnderTest = {
      topology,
      engine,
      path,
      call: (account, opts = {}) =>
        runSipp({ scenario: 'edge-uac', vars: { HOLD: '100' }, remote: path.sipTarget, injection: [[account]], service: 'callee', ...opts }),
      async stop() {
        await path.stop();
        await engine?.stop();
        await topology.stop();
      },
    };
    return eut;
  } catch (err) {
    await engine?.stop();
    await topology.stop();
    throw err;
  }
}

/** The final responses a SIPp caller received, in order. */
export function finalsReceived(result: SippResult): TracedMessage[] {
  return result.messages.filter((m) => m.direction === 'received' && m.status !== undefined && m.status >= 200 && m.headers.cseq?.[0]?.includes('INVITE'));
}

/** Throws with SIPp's output when it did not run as expected. */
export function assertSippRan(result: SippResult, label: string): void {
  if (result.exitCode !== 0 || result.failed > 0) {
    throw new Error(`${label}: sipp exit ${result.exitCode}, failed ${result.failed}\n${result.output.slice(-2000)}`);
  }
}
