import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { parseConfig } from '../src/config/load.js';
import { startController, type RunningController } from '../src/control/start.js';
import { startCallPath, type CallPath } from '../src/dev/call-path.js';
import { startSipp, type SippProcess, type SippResult } from '../src/dev/sipp.js';
import { startTopology, type Topology } from '../src/dev/topology.js';
import type { Logger } from '../src/log.js';
import { accountKey } from '../src/redis/keys.js';
import { prng } from './accounts.js';
import { figuresOf } from './stats.js';

/**
 * `npm run bench -- cut-overdraft --accounts N`: how far past their credit calls run before they
 * are ended (controller.cut_calls on, the product's timings unless told). N low-credit accounts,
 * each with credit for 2 to 12 s of one call at 6 per minute (0.1 per second), each place one call
 * held up to 40 s, at 50 calls/s; 20 funded accounts call beside them. The breaker is set out of
 * the way (so many accounts running dry at once is what it holds by default). Every call's cost moves into
 * its account's balance when it ends, so the final balance says it all: the overdraft is minus the
 * balance, and the cut's delay after the credit ran out is the overdraft over the rate. Targets:
 * overdraft at most rate x 2 s for every account; no funded call ended by the network.
 */

export interface CutOverdraftOptions {
  accounts: number;
  graceMs?: number;
  roundMs?: number;
  outDir: string;
}

const RATE_PER_MINUTE = 6;
const PER_SECOND = RATE_PER_MINUTE / 60;
const FUNDED = 20;
const HOLD_MS = 40_000;

const received = (r: SippResult, method: string) => r.messages.filter((m) => m.direction === 'received' && m.method === method).length;
const sent = (r: SippResult, method: string) => r.messages.filter((m) => m.direction === 'sent' && m.method === method).length;

export async function runCutOverdraft(o: CutOverdraftOptions, note: (line: string) => void): Promise<Record<string, unknown>> {
  const startedAt = new Date();
  const runDir = path.join(o.outDir, `cut-overdraft-${startedAt.toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(runDir, { recursive: true });
  const logger: Logger = pino({ level: 'info', base: { service: 'credit-edge' } }, pino.destination({ dest: path.join(runDir, 'run.log'), sync: false }));
  let topology: Topology | undefined;
  let callPath: CallPath | undefined;
  let controller: RunningController | undefined;
  const sipps: SippProcess[] = [];
  try {
    topology = await startTopology({ replicas: 1, sentinels: 1, logger });
    const rand = prng(7);
    const low = Array.from({ length: o.accounts }, (_, i) => `cut-${String(i).padStart(4, '0')}`);
    const funded = Array.from({ length: FUNDED }, (_, i) => `funded-${i}`);
    const credit = new Map(low.map((id) => [id, Math.round((2 + 10 * rand()) * PER_SECOND * 1e6) / 1e6]));
    await topology.seed({
      ...Object.fromEntries(low.map((id) => [id, { enabled: true, balance: credit.get(id)!, rate: RATE_PER_MINUTE }])),
      ...Object.fromEntries(funded.map((id) => [id, { enabled: true, balance: 1000, rate: RATE_PER_MINUTE }])),
    });
    callPath = await startCallPath({ topology, logger });
    const controllerConfig = parseConfig(
      JSON.stringify({
        redis: { sentinel: { master_name: topology.masterName, addresses: topology.sentinelAddresses().map((s) => `${s.host}:${s.port}`) } },
        controller: {
          name: 'bench-controller',
          wait_replicas: 0,
          ...(o.roundMs !== undefined && { round_ms: o.roundMs }),
          cut_calls: { enabled: true, ...(o.graceMs !== undefined && { grace_ms: o.graceMs }) },
          // Hundreds of accounts running dry within seconds is what the breaker holds by default
          // (20 a minute): here it is the load to measure, so the breaker is set out of its way.
          breaker: { max_blocks: 100_000, max_share: 1 },
        },
      }),
      '(cut-overdraft controller)',
    );
    controller = startController(controllerConfig, logger.child({ component: 'controller' }));
    const { grace_ms: graceMs } = controllerConfig.controller.cut_calls;
    note(`${o.accounts} low-credit accounts (2-12 s of credit at ${PER_SECOND}/s) and ${FUNDED} funded ones; grace ${graceMs} ms, round ${controllerConfig.controller.round_ms} ms`);

    const place = async (accounts: string[], holdMs: number) => {
      const sipp = await startSipp({ scenario: 'edge-uac-until-bye', vars: { HOLD: String(holdMs) }, remote: callPath!.sipTarget, injection: accounts.map((a) => [a]), service: 'callee', calls: accounts.length, rate: 50, timeoutMs: holdMs + 60_000 });
      sipps.push(sipp);
      return sipp;
    };
    const [lowCalls, fundedCalls] = await Promise.all([place(low, HOLD_MS), place(funded, 15_000)]);
    const [lowResult, fundedResult] = await Promise.all([lowCalls.done, fundedCalls.done]);
    // The last ends reach the master (the edge's queue drains within a moment).
    await new Promise((resolve) => setTimeout(resolve, 1500));

    const balances = await Promise.all(low.map(async (id) => Number(await topology!.master.client.hget(accountKey(id), 'balance'))));
    const overdrafts = balances.map((b) => Math.max(0, -b));
    const delaysMs = overdrafts.map((d) => (d / PER_SECOND) * 1000);
    const delay = figuresOf(delaysMs)!;
    const overdraftAt = (ms: number) => Math.round((ms / 1000) * PER_SECOND * 1e4) / 1e4;
    const over = { p50: overdraftAt(delay.p50), p99: overdraftAt(delay.p99), max: Math.max(...overdrafts) };
    const bound = 2 * PER_SECOND;
    const summary = {
      profile: 'cut-overdraft',
      started_at: startedAt.toISOString(),
      accounts: o.accounts,
      funded_accounts: FUNDED,
      grace_ms: graceMs,
      round_ms: controllerConfig.controller.round_ms,
      calls: { low: lowResult.successful + lowResult.failed, failed: lowResult.failed + fundedResult.failed },
      cut_by_network: received(lowResult, 'BYE'),
      hung_up_by_caller: sent(lowResult, 'BYE'),
      funded_cut: received(fundedResult, 'BYE'),
      overdraft: { p50: over.p50, p99: over.p99, max: over.max },
      cut_after_credit_ms: { p50: Math.round(delay.p50), p99: Math.round(delay.p99), max: Math.round(delay.max) },
      targets: {
        overdraft_max: { target: `<= rate x 2 s = ${bound}`, value: over.max, met: over.max <= bound + 1e-9 },
        every_low_call_cut: { target: `= ${o.accounts}`, value: received(lowResult, 'BYE'), met: received(lowResult, 'BYE') === o.accounts },
        funded_cut: { target: '= 0', value: received(fundedResult, 'BYE'), met: received(fundedResult, 'BYE') === 0 },
      },
      results_dir: runDir,
    };
    writeFileSync(path.join(runDir, 'summary.json'), JSON.stringify(summary, null, 2));
    note(`cut ${summary.cut_by_network} of ${o.accounts} low-credit calls; after the credit ran out: p50 ${summary.cut_after_credit_ms.p50} ms, p99 ${summary.cut_after_credit_ms.p99} ms, max ${summary.cut_after_credit_ms.max} ms; funded calls cut ${summary.funded_cut}`);
    return summary;
  } finally {
    for (const s of sipps) await s.stop().catch(() => undefined);
    await controller?.stop();
    await callPath?.stop();
    await topology?.stop();
  }
}
