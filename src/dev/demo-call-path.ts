import type { Logger } from '../log.js';
import { startCallPath } from './call-path.js';
import type { DemoContext, DemoService } from './demo-command.js';
import { runSipp, type TracedMessage } from './sipp.js';

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
 * SIPp UAS as the downstream carrier, and the edge reading the topology's replicas. Once up, it
 * places one call per demo account and prints the answers, then how to place calls by hand.
 */
export function demoCallPath(sip: { host: string; port: number }): DemoService {
  return {
    name: 'SIP engine, carrier and edge',
    async start({ topology, logger }: DemoContext) {
      const path = await startCallPath({ topology, logger, sip });
      const say = (text: string) => process.stderr.write(text + '\n');
      say(`demo: SIP engine on ${path.sipTarget} (udp+tcp), carrier (SIPp UAS) on 127.0.0.1:${path.carrier?.port}, edge connected`);
      say('demo: one call per demo account:');
      for (const { account, expect } of DEMO_CALLS) say(`  ${account.padEnd(14)} -> ${await placeCall(path.sipTarget, account, logger)}   (expected: ${expect})`);
      say(
        [
          'demo: place calls yourself with SIPp, e.g.',
          `  sipp ${path.sipTarget} -sf sipp/demo-call.xml -key account acct-ok -s callee -m 1`,
          `  sipp ${path.sipTarget} -sf sipp/demo-call.xml -key account acct-nocredit -s callee -m 1 -trace_msg`,
          '  (accounts: acct-ok, acct-disabled, acct-nocredit, acct-full, acct-missing; -trace_msg writes the messages to a file)',
        ].join('\n'),
      );
      return {
        stop: () => path.stop(),
        status: () => `edge ${path.edge.ready() ? 'ready' : 'NOT READY'}, calls in progress ${path.edge.calls.total}, cached accounts ${path.edge.cache.size}`,
      };
    },
  };
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
