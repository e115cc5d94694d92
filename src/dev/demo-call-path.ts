import fs from 'node:fs';
import path from 'node:path';
import { parseConfig } from '../config/load.js';
import { startController } from '../control/start.js';
import type { Logger } from '../log.js';
import { startCallPath } from './call-path.js';
import type { DemoContext, DemoService } from './demo-command.js';
import { runSipp, type TracedMessage } from './sipp.js';
import type { Topology } from './topology.js';

/** The demo accounts and what each is meant to get, in the order they are shown. */
const DEMO_CALLS: { account: string; expect: string }[] = [
  { account: 'acct-ok', expect: 'call completes (200)' },
  { account: 'acct-disabled', expect: '403 Account Not Enabled' },
  { account: 'acct-nocredit', expect: '403 Out Of Call Credit' },
  { account: 'acct-full', expect: '403 Channel Limit Reached' },
  { account: 'acct-missing', expect: '403 Forbidden' },
];

/**
 * The demo's SIP side: the embedded engine on `--sip` (default 127.0.0.1:5060, UDP and TCP), a
 * SIPp UAS as the downstream carrier, the edge reading the topology's replicas and, with
 * Sentinels, the credit controller. Once up, it places one call per demo account and prints the
 * answers, then how to place calls by hand and drive the CLI against this topology.
 */
export function demoCallPath(sip: { host: string; port: number }): DemoService {
  return {
    name: 'SIP engine, carrier, edge and controller',
    async start({ topology, logger }: DemoContext) {
      const callPath = await startCallPath({ topology, logger, sip });
      const configFile = writeCliConfig(topology);
      const controller =
        topology.sentinels.length > 0
          ? startController(parseConfig(fs.readFileSync(configFile, 'utf8'), configFile), logger, { sentinels: topology.sentinelAddresses(), masterName: topology.masterName })
          : undefined;
      const say = (text: string) => process.stderr.write(text + '\n');
      say(`demo: SIP engine on ${callPath.sipTarget} (udp+tcp), carrier (SIPp UAS) on 127.0.0.1:${callPath.carrier?.port}, edge connected${controller ? ', credit controller running' : ''}`);
      say('demo: one call per demo account:');
      for (const { account, expect } of DEMO_CALLS) say(`  ${account.padEnd(14)} -> ${await placeCall(callPath.sipTarget, account, logger)}   (expected: ${expect})`);
      const sipp = `sipp ${callPath.sipTarget} -sf sipp/demo-call.xml -s callee -m 1`;
      say(
        [
          'demo: place calls yourself with SIPp (-d: how long an answered call lasts, ms), e.g.',
          `  ${sipp} -d 2000 -key account acct-ok`,
          `  ${sipp} -d 2000 -key account acct-nocredit -trace_msg      (messages, with Reason headers, to a file)`,
          ...(controller
            ? [
                'demo: watch the credit controller: acct-low has credit for ~6 s of one call;',
                `  ${sipp} -d 20000 -key account acct-low                   (blocked mid-call; the next call gets 403 Out Of Call Credit)`,
                `  node dist/src/cli.js account set acct-low balance=10 --config ${configFile}      (top-up: the controller lifts its block)`,
                `  node dist/src/cli.js audit acct-low --config ${configFile}`,
              ]
            : []),
        ].join('\n'),
      );
      return {
        async stop() {
          await controller?.stop();
          await callPath.stop();
        },
        status: () =>
          [
            `edge ${callPath.edge.ready() ? 'ready' : 'NOT READY'}, calls in progress ${callPath.edge.calls.total}, cached accounts ${callPath.edge.cache.size}`,
            ...(controller ? [`controller: ${controller.status()}`] : []),
          ].join('\n  '),
      };
    },
  };
}

/** A config file naming this topology, so the CLI (account, audit, calls) reaches it. */
function writeCliConfig(topology: Topology): string {
  const file = path.join(topology.dir, 'credit-edge.yaml');
  const sentinels = topology.sentinelAddresses().map((a) => `${a.host}:${a.port}`);
  const replicas = topology.replicas.map((r) => `    - { name: ${r.name}, host: ${r.host}, port: ${r.port} }`);
  const text = [
    '# Written by `credit-edge demo` for its local topology; gone when the demo stops.',
    'redis:',
    '  replicas:',
    ...replicas,
    ...(sentinels.length > 0 ? ['  sentinel:', `    master_name: ${topology.masterName}`, `    addresses: [${sentinels.join(', ')}]`] : []),
    'controller:',
    '  name: demo-controller',
    '  admin_listen: 127.0.0.1:0',
    '',
  ].join('\n');
  fs.writeFileSync(file, text);
  return file;
}

/** One call through the edge; its answer as a person reads it: `403 Out Of Call Credit (Reason: ...)`. */
async function placeCall(sipTarget: string, account: string, logger: Logger): Promise<string> {
  try {
    const result = await runSipp({ scenario: 'edge-uac', vars: { HOLD: '200' }, remote: sipTarget, injection: [[account]], service: 'callee', timeoutMs: 15_000 });
    const final = result.messages.find((m: TracedMessage) => m.direction === 'received' && (m.status ?? 0) >= 200);
    if (!final) return `no answer (sipp exit ${result.exitCode})`;
    const reason = final.headers.reason?.[0];
    const completed = final.status === 200 && result.successful === 1 ? ', call completed' : '';
    return `${final.status} ${final.reason}${completed}${reason ? `  (Reason: ${reason})` : ''}`;
  } catch (err) {
    logger.warn({ err, account }, 'demo call failed');
    return `failed: ${(err as Error).message}`;
  }
}
