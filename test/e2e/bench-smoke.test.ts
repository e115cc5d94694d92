import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/dev/sipp.js';
import { runBench, type Summary } from '../../bench/bench.js';
import { readTrace, stampUs } from '../../bench/trace.js';

/**
 * The benchmark runner works end to end (issue 7): the smoke profile runs against the real local
 * rig (Redis, the engine and the edge each in its own process, SIPp), and its output is complete. It
 * asserts no speed: only that the figures are all there, calls were placed, the report was written,
 * and no account with credit got a 403. The edge and the engine run from dist/, so it builds first.
 */

const out = mkdtempSync(path.join(tmpdir(), 'bench-smoke-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

const FIELDS = ['profile', 'cps', 'calls', 'failed_calls', 'pdd_p50_ms', 'pdd_p99_ms', 'pdd_max_ms', 'ratio_p50', 'ratio_p99', 'false_403', 'unexpected_503', 'edge_rss_mb', 'edge_cpu_us_per_call'] as const;

describe('bench smoke profile', () => {
  beforeAll(() => {
    const root = packageRoot();
    execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  }, 120_000);

  it('runs in under a minute and writes complete figures, a report and no false 403', async () => {
    const started = Date.now();
    const summary: Summary = await runBench('smoke', { outDir: out }, { note: () => undefined });
    expect(Date.now() - started).toBeLessThan(60_000);
    for (const field of FIELDS) {
      expect(summary, field).toHaveProperty(field);
      expect(summary[field], field).not.toBeNull();
    }
    expect(summary.profile).toBe('smoke');
    expect(summary.calls).toBeGreaterThan(0);
    expect(summary.false_403).toBe(0);
    expect(summary.pdd_p50_ms!).toBeGreaterThan(0);
    expect(summary.pdd_max_ms!).toBeGreaterThanOrEqual(summary.pdd_p99_ms!);
    // The edge ran in its own process, one per arm: CPU per call and peak RSS read from /proc.
    expect(summary.edge_cpu_us_per_call.gated).toBeGreaterThan(0);
    expect(summary.edge_cpu_us_per_call.ungated).toBeGreaterThan(0);
    // ... and over the warm-ups before the arms (a fresh edge's first calls), reported beside them.
    expect(summary.edge_cpu_us_per_call_warmup?.gated).toBeGreaterThan(0);
    expect(summary.edge_cpu_us_per_call_warmup?.ungated).toBeGreaterThan(0);
    expect(summary.edge_rss_mb).toBeGreaterThan(0);
    // The embedded engine is ours (its CPU too); an external drachtio-server is not.
    if (process.env.DRACHTIO_HOST) expect(summary.sip_server_cpu_us_per_call).toBeNull();
    else expect(summary.sip_server_cpu_us_per_call?.gated).toBeGreaterThan(0);
    expect(summary.per_arm.map((a) => a.arm)).toEqual(['gated-1', 'ungated-1']);
    const edgeLog = readFileSync(path.join(summary.results_dir, 'edge.log'), 'utf8');
    expect(edgeLog).toMatch(/"callId":"[^"]+".*"msg":"decision"/);
    // Every account class was called and answered as it should be (gated arm).
    expect(Object.keys(summary.outcomes).sort()).toEqual(expect.arrayContaining(['403-forbidden', '403-no-credit', '403-not-enabled', 'routed']));
    expect(existsSync(summary.report)).toBe(true);
    const html = readFileSync(summary.report, 'utf8');
    expect(html.match(/<svg/g)?.length).toBe(4);
    expect(readFileSync(summary.chart_svg, 'utf8')).toMatch(/^<svg/);
    expect(JSON.parse(readFileSync(path.join(summary.results_dir, 'summary.json'), 'utf8'))).toMatchObject({ profile: 'smoke', calls: summary.calls });
  }, 90_000);
});

describe('SIPp message trace parsing', () => {
  it('reads the block stamp with microseconds (local time)', () => {
    const us = stampUs('----------------------------------------------- 2026-11-25 03:12:21.612110');
    expect(us! % 1_000_000).toBe(612110);
    expect(new Date(Math.floor(us! / 1000)).getSeconds()).toBe(21);
  });

  it('folds a trace into per-call PDD: first INVITE sent -> first 18x or final, 100 Trying ignored', async () => {
    const file = path.join(out, 'trace.log');
    const block = (stamp: string, dir: string, lines: string[]) => `----------------------------------------------- 2026-11-25 03:12:${stamp}\n${dir}\n\n${lines.join('\n')}\n\n`;
    const inv = ['INVITE sip:callee@127.0.0.1:5060 SIP/2.0', 'Call-ID: c1', 'CSeq: 1 INVITE', 'X-Account-Id: acct-1', 'Content-Length: 0'];
    const resp = (code: string) => [`SIP/2.0 ${code}`, 'Call-ID: c1', 'CSeq: 1 INVITE', 'Content-Length: 0'];
    const { writeFileSync } = await import('node:fs');
    writeFileSync(
      file,
      block('21.000100', 'UDP message sent (500 bytes):', inv) +
        block('21.000300', 'UDP message received [200] bytes :', resp('100 Trying')) +
        block('21.001350', 'UDP message received [300] bytes :', resp('180 Ringing')) +
        block('21.002000', 'UDP message received [300] bytes :', resp('200 OK')),
    );
    const [call] = await readTrace(file);
    expect(call).toMatchObject({ callId: 'c1', account: 'acct-1', answerStatus: 180, finalStatus: 200, finalReason: 'OK' });
    expect(call!.answerUs! - call!.inviteUs!).toBe(1250);
  });
});
