import type { Logger } from '../log.js';
import { runSipp, type TracedMessage } from './sipp.js';

/** The demo accounts (config/demo-accounts.yaml) and what each is meant to get, in the order shown. */
export const DEMO_CALLS: { account: string; expect: string }[] = [
  { account: 'acct-ok', expect: '200 OK' },
  { account: 'acct-disabled', expect: '403 Account Not Enabled' },
  { account: 'acct-nocredit', expect: '403 Out Of Call Credit' },
  { account: 'acct-full', expect: '403 Channel Limit Reached' },
  { account: 'acct-missing', expect: '403 Forbidden' },
];

/** One demo call's answer, as the caller (SIPp) saw it. */
export interface DemoAnswer {
  account: string;
  expect: string;
  /** `403 Out Of Call Credit`, or why there was no answer. */
  answer: string;
  /** The Reason header of the final response, if any. */
  reason?: string;
  /** An answered call that went through to its BYE. */
  completed: boolean;
  /** The answer starts with what was expected. */
  asExpected: boolean;
}

/** Places one call per demo account through the edge at `sipTarget`, one after the other. */
export async function placeDemoCalls(sipTarget: string, logger: Logger): Promise<DemoAnswer[]> {
  const answers: DemoAnswer[] = [];
  for (const { account, expect } of DEMO_CALLS) answers.push({ account, expect, ...(await placeCall(sipTarget, account, logger)) });
  for (const a of answers) logger.info({ component: 'demo', account: a.account, answer: a.answer, reason: a.reason, completed: a.completed, expected: a.expect }, 'demo call answered');
  return answers;
}

async function placeCall(sipTarget: string, account: string, logger: Logger): Promise<Omit<DemoAnswer, 'account' | 'expect'>> {
  try {
    const result = await runSipp({ scenario: 'edge-uac', vars: { HOLD: '200' }, remote: sipTarget, injection: [[account]], service: 'callee', timeoutMs: 15_000 });
    const final = result.messages.find((m: TracedMessage) => m.direction === 'received' && (m.status ?? 0) >= 200);
    if (!final) return { answer: `no answer (sipp exit ${result.exitCode})`, completed: false, asExpected: false };
    const answer = `${final.status} ${final.reason}`;
    const reason = final.headers.reason?.[0];
    const expected = DEMO_CALLS.find((c) => c.account === account)?.expect ?? '';
    return { answer, ...(reason !== undefined && { reason }), completed: final.status === 200 && result.successful === 1, asExpected: answer.startsWith(expected) };
  } catch (err) {
    logger.warn({ component: 'demo', err, account }, 'demo call failed');
    return { answer: `failed: ${(err as Error).message}`, completed: false, asExpected: false };
  }
}
