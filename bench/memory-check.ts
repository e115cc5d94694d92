import { startCallPath } from '../src/dev/call-path.js';
import { runSipp } from '../src/dev/sipp.js';
import { startTopology } from '../src/dev/topology.js';
import { silentLogger } from '../src/log.js';

/**
 * Does the edge (with the embedded engine) hold on to memory per call? Rounds of SIPp calls (one
 * account routed, one disabled, one absent) through the in-process call path, and the heap after
 * a full GC between rounds: it should level off once caches are warm.
 *   npm run -s build && node --expose-gc dist/bench/memory-check.js [rounds] [calls per round]
 */
const rounds = Number(process.argv[2] ?? 4);
const calls = Number(process.argv[3] ?? 3000);
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

const topology = await startTopology({ replicas: 2, sentinels: 0, logger: silentLogger });
try {
  await topology.seed({ 'acct-mem': { enabled: true, balance: 1000 }, 'acct-mem-off': { enabled: false } });
  const path = await startCallPath({ topology, logger: silentLogger });
  try {
    for (let round = 1; round <= rounds; round++) {
      const result = await runSipp({
        scenario: 'edge-uac',
        vars: { HOLD: '20' },
        remote: path.sipTarget,
        injection: [['acct-mem'], ['acct-mem-off'], ['acct-mem-absent']],
        service: 'callee',
        calls,
        rate: 300,
        limit: 200,
        traceMessages: false,
        timeoutMs: 120_000,
      });
      // Let transaction timers (Timer K/J, dialogs) run out before measuring.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      gc();
      const { heapUsed, rss } = process.memoryUsage();
      process.stdout.write(`round ${round}: ${result.successful} calls ok, ${result.failed} failed; heap after GC ${(heapUsed / 1e6).toFixed(1)} MB, rss ${(rss / 1e6).toFixed(0)} MB\n`);
    }
  } finally {
    await path.stop();
  }
} finally {
  await topology.stop();
}
