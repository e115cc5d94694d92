import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { topFunctions } from '../../bench/cpu-profile.js';
import { decisionTimesOf } from '../../bench/decision-time.js';
import { sumOfSeries } from '../../bench/edge-admin.js';
import { mostInOneSecond, mostOverlapping } from '../../bench/limits.js';
import type { CallTrace } from '../../bench/trace.js';
import { clockTicksPerSecond, cpuMsOf, peakRssMbOf } from '../../bench/proc-stats.js';

/** The benchmark's own measuring parts: /proc readings, the metrics text, .cpuprofile ranking. */

const dir = mkdtempSync(path.join(tmpdir(), 'bench-measures-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('process figures from /proc', () => {
  it('reads CPU time that grows with work done, and a peak RSS', () => {
    expect(clockTicksPerSecond()).toBeGreaterThan(0);
    const before = cpuMsOf(process.pid)!;
    let x = 0;
    for (const end = Date.now() + 200; Date.now() < end; ) x += Math.sqrt(x + 1);
    expect(x).toBeGreaterThan(0);
    expect(cpuMsOf(process.pid)!).toBeGreaterThan(before);
    expect(peakRssMbOf(process.pid)).toBeGreaterThan(1);
  });

  it('says undefined for a process that is not there', () => {
    expect(cpuMsOf(2 ** 22 + 1)).toBeUndefined();
    expect(peakRssMbOf(2 ** 22 + 1)).toBeUndefined();
  });
});

describe('metric sums from GET /metrics', () => {
  it('adds every series of the named metric, and only of that one', () => {
    const text = [
      '# HELP credit_edge_stale_serves_total Decisions taken from the stale cache',
      '# TYPE credit_edge_stale_serves_total counter',
      'credit_edge_stale_serves_total{cause="no replica in sync"} 3',
      'credit_edge_stale_serves_total{cause="timeout"} 4',
      'credit_edge_stale_serves_total_extra 100',
      'credit_edge_decisions_total{outcome="route"} 9',
    ].join('\n');
    expect(sumOfSeries(text, 'credit_edge_stale_serves_total')).toBe(7);
    expect(sumOfSeries(text, 'credit_edge_absent_metric')).toBe(0);
  });
});

describe('top functions from .cpuprofile files', () => {
  it('gives each sample the time to the next one, adds up a function over call paths and files, and leaves idle out', () => {
    const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber, columnNumber: 0, scriptId: '1' });
    const profile = {
      nodes: [
        { id: 1, callFrame: frame('(root)'), children: [2, 3, 4] },
        { id: 2, callFrame: frame('decide', `file://${dir}/dist/src/policy/decide.js`, 9), children: [] },
        { id: 3, callFrame: frame('(idle)'), children: [] },
        { id: 4, callFrame: frame('onInvite', `file://${dir}/dist/src/edge/app.js`, 41), children: [5] },
        { id: 5, callFrame: frame('decide', `file://${dir}/dist/src/policy/decide.js`, 9), children: [] },
      ],
      samples: [2, 3, 5, 4, 2],
      // µs before each sample: sample i lasts timeDeltas[i + 1].
      timeDeltas: [0, 1000, 5000, 2000, 3000],
    };
    const a = path.join(dir, 'a.cpuprofile');
    const b = path.join(dir, 'b.cpuprofile');
    writeFileSync(a, JSON.stringify(profile));
    writeFileSync(b, JSON.stringify({ ...profile, samples: [4, 2], timeDeltas: [0, 500] }));
    const top = topFunctions([a, b, path.join(dir, 'missing.cpuprofile')], 25, dir)!;
    expect(top.files).toBe(2);
    expect(top.idleMs).toBe(5);
    // decide: 1 ms (a) + 2 ms (a, via onInvite) + 0 (a, last sample) + 0 (b, last); onInvite: 3 ms (a) + 0.5 ms (b).
    expect(top.top).toEqual([
      { functionName: 'onInvite', location: 'dist/src/edge/app.js:42', selfMs: 3.5, pct: 53.8 },
      { functionName: 'decide', location: 'dist/src/policy/decide.js:10', selfMs: 3, pct: 46.2 },
    ]);
  });

  it('says undefined when no profile was written', () => {
    expect(topFunctions([path.join(dir, 'none.cpuprofile')])).toBeUndefined();
  });
});

describe("the limits run's counts, from the callers' traces", () => {
  const call = (inviteMs: number, connectedMs?: number, byeMs?: number): CallTrace =>
    ({ callId: `${inviteMs}`, account: 'a', inviteUs: inviteMs * 1000, connectedUs: connectedMs === undefined ? undefined : connectedMs * 1000, byeUs: byeMs === undefined ? undefined : byeMs * 1000 }) as CallTrace;

  it('the most calls connected at once: one hung up as another connects is not two; one never hung up counts to the end', () => {
    expect(mostOverlapping([call(0, 10, 2000), call(5, 2000, 4000), call(6, 3000, 3500)])).toBe(2);
    expect(mostOverlapping([call(0, 10, 2000), call(5, 20)])).toBe(2);
    expect(mostOverlapping([call(0), call(1, 5, 6)])).toBe(1);
  });

  it('the most instants inside one sliding second', () => {
    expect(mostInOneSecond([0, 500_000, 999_000, 1_000_000, 1_999_000])).toBe(3);
    expect(mostInOneSecond([1_000_000, undefined, 0])).toBe(1);
    expect(mostInOneSecond([])).toBe(0);
  });
});

describe("what the gate adds inside the edge, from the edges' decision lines", () => {
  const started = JSON.stringify({ level: 30, msg: 'admin API listening' });
  const decision = (account: string, outcome: string, ms: number) => JSON.stringify({ level: 30, callId: `c-${ms}`, account, outcome, ms, msg: 'decision' });
  const classOf = new Map([['good', 'ok'], ['off', 'disabled']] as const);

  it('medians per mode over the routed calls of good accounts, each process in its turn', () => {
    const file = path.join(dir, 'edge.log');
    const gated = [started, decision('good', 'route', 0.05), decision('good', 'route', 0.07), decision('off', 'account-disabled', 0.9), decision('good', 'route', 0.06)];
    const ungated = [started, decision('good', 'route', 0.02), decision('off', 'route', 0.9), decision('good', 'route', 0.03), decision('good', 'route', 0.02)];
    writeFileSync(file, [...gated, ...ungated].join('\n') + '\n');
    expect(decisionTimesOf(file, [true, false], classOf)).toEqual({ gated_p50_ms: 0.06, ungated_p50_ms: 0.02, gate_us: 40 });
  });

  it('says undefined when the log does not hold one part per edge process', () => {
    const file = path.join(dir, 'edge-short.log');
    writeFileSync(file, [started, decision('good', 'route', 0.05)].join('\n') + '\n');
    expect(decisionTimesOf(file, [true, false], classOf)).toBeUndefined();
    expect(decisionTimesOf(path.join(dir, 'none.log'), [true], classOf)).toBeUndefined();
  });
});
