import { Redis } from 'ioredis';
import { callEndArgs, callStartArgs, defineCallScripts, type CallRecord } from '../src/calls/records.js';
import { parseInfo } from '../src/dev/redis-wire.js';
import { startTopology } from '../src/dev/topology.js';
import { silentLogger } from '../src/log.js';
import { accountKey } from '../src/redis/keys.js';

/**
 * What one call event costs the master: the edge sends one command per event (EVALSHA of the call
 * start or end script, pipelined as CallRecorder does); its time on the master comes from INFO
 * commandstats (usec per call). Accounts with 10 calls each, then every call ended.
 *   npm run -s build && node dist/bench/call-event-cost.js [events] [accounts]
 */
const events = Number(process.argv[2] ?? 20_000);
const accounts = Number(process.argv[3] ?? 2000);
const topology = await startTopology({ replicas: 0, sentinels: 0, logger: silentLogger });
const client = defineCallScripts(new Redis({ host: topology.master.host, port: topology.master.port }));
try {
  const seed = client.pipeline();
  for (let i = 0; i < accounts; i++) seed.hset(accountKey(`cost-${i}`), 'enabled', '1', 'balance', '1000', 'rate', '0.012');
  await seed.exec();
  const records: CallRecord[] = Array.from({ length: events }, (_, j) => ({ callId: `cost-call-${j}`, account: `cost-${j % accounts}`, start: Date.now() - 60_000 - j, node: 'edge-1', instance: 'cost', rate: 0.012 }));
  const stats = async () => {
    const line = parseInfo(await client.info('commandstats')).cmdstat_evalsha ?? '';
    return { calls: Number(/calls=(\d+)/.exec(line)?.[1] ?? 0), usec: Number(/usec=(\d+)/.exec(line)?.[1] ?? 0) };
  };
  const measure = async (label: string, send: (p: ReturnType<typeof client.pipeline> & typeof client, r: CallRecord) => void) => {
    const before = await stats();
    for (let i = 0; i < records.length; i += 1000) {
      const p = client.pipeline() as ReturnType<typeof client.pipeline> & typeof client;
      for (const r of records.slice(i, i + 1000)) send(p, r);
      await p.exec();
    }
    const after = await stats();
    process.stdout.write(`${label.padEnd(12)} ${((after.usec - before.usec) / Math.max(1, after.calls - before.calls)).toFixed(1)} us per event on the master, 1 command from the edge\n`);
  };
  await client.callStart(...callStartArgs({ ...records[0]!, callId: 'warm-up' }));
  await measure('call start', (p, r) => void p.callStart(...callStartArgs(r)));
  await measure('call end', (p, r) => void p.callEnd(...callEndArgs(r.account, r.callId, Date.now(), r)));
} finally {
  client.disconnect();
  await topology.stop();
}
