import { existsSync, readFileSync } from 'node:fs';
import type { AccountClass } from './accounts.js';
import { figuresOf } from './stats.js';

/** The edge's own time to decide, median over the routed calls of good accounts, per mode (ms). */
export interface DecisionTimes {
  gated_p50_ms: number;
  ungated_p50_ms: number;
  /** Gated minus ungated, µs: what the gate adds inside the edge. */
  gate_us: number;
}

/**
 * What the gate adds inside the edge, from the `ms` of its decision log lines (INVITE received
 * to decision) in edge.log, where each edge process of the run wrote in turn, in the order of
 * `gatedByProcess` (each process's first line, 'admin API listening', starts its part). Steadier
 * than the PDD ratio, which also holds the SIP server's, SIPp's and the scheduler's time on a
 * shared machine. Undefined when the log does not hold one part per process, or a mode has none.
 */
export function decisionTimesOf(logFile: string, gatedByProcess: boolean[], classOf: Map<string, AccountClass>): DecisionTimes | undefined {
  if (!existsSync(logFile)) return undefined;
  const parts: number[][] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (line.includes('"admin API listening"')) parts.push([]);
    else if (line.includes('"msg":"decision"') && line.includes('"outcome":"route"')) {
      const { account, ms } = JSON.parse(line) as { account?: string; ms?: number };
      if (account !== undefined && ms !== undefined && classOf.get(account) === 'ok') parts.at(-1)?.push(ms);
    }
  }
  if (parts.length !== gatedByProcess.length) return undefined;
  const gated = figuresOf(parts.filter((_, i) => gatedByProcess[i]).flat())?.p50;
  const ungated = figuresOf(parts.filter((_, i) => !gatedByProcess[i]).flat())?.p50;
  if (gated === undefined || ungated === undefined) return undefined;
  return { gated_p50_ms: gated, ungated_p50_ms: ungated, gate_us: Math.round((gated - ungated) * 1000) };
}
