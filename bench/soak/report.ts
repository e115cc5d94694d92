import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { renderSvg } from '../report.js';
import { figuresOf } from '../stats.js';
import type { CheckResult, Violation } from './checker.js';
import type { SoakCall, SoakHistory } from './history.js';
import type { SoakSummary } from './soak.js';

/**
 * The soak's report: one chart (fault windows as lanes over PDD and answers per second, with the
 * violations marked, on one time axis; also written alone as timeline.svg for the README), the
 * summary, and each violation with the calls and faults around it.
 */

const WIDTH = 900;
/** Seconds per bin of the PDD and answer series. */
const BIN_S = 10;

export async function writeSoakReport(h: SoakHistory, result: CheckResult, summary: SoakSummary, dir: string): Promise<string> {
  const svg = await renderSvg(timelineSpec(h, result, summary.seed));
  writeFileSync(path.join(dir, 'timeline.svg'), svg);
  const file = path.join(dir, 'report.html');
  writeFileSync(file, page(h, result, summary, svg));
  return file;
}

/** What a call got, in the words of the chart's legend. */
export function answerOf(c: SoakCall): string {
  if (c.status === undefined) return 'no answer';
  if (c.status < 300) return 'routed';
  if (c.status === 403) return `403 ${c.phrase ?? ''}`.trim();
  return String(c.status);
}

function timelineSpec(h: SoakHistory, result: CheckResult, seed: number): TopLevelSpec {
  const t = (ms: number) => Math.round((ms - h.startMs) / 100) / 10;
  const end = t(h.endMs);
  const lanes = h.faults
    .filter((f) => !f.error?.startsWith('skipped'))
    .map((f) => ({ kind: f.kind, start: t(f.startMs), end: t(f.endMs ?? h.endMs), target: f.target, failed: f.error !== undefined }));
  const bins = new Map<number, SoakCall[]>();
  for (const c of h.calls) {
    const b = Math.floor(t(c.inviteMs) / BIN_S);
    bins.set(b, [...(bins.get(b) ?? []), c]);
  }
  const pdd: { t: number; series: string; ms: number }[] = [];
  const answers: { t: number; answer: string; perS: number }[] = [];
  for (const [b, calls] of [...bins.entries()].sort((x, y) => x[0] - y[0])) {
    const mid = (b + 0.5) * BIN_S;
    const f = figuresOf(calls.filter((c) => c.answerMs !== undefined).map((c) => c.answerMs! - c.inviteMs));
    if (f) pdd.push({ t: mid, series: 'p50', ms: Math.max(f.p50, 0.01) }, { t: mid, series: 'p99', ms: Math.max(f.p99, 0.01) });
    const counts = new Map<string, number>();
    for (const c of calls) counts.set(answerOf(c), (counts.get(answerOf(c)) ?? 0) + 1);
    for (const [answer, n] of counts) answers.push({ t: b * BIN_S, answer, perS: n / BIN_S });
  }
  const violations = result.violations.map((v) => ({ at: t(v.atMs), kind: v.kind }));
  const x = { field: 't', type: 'quantitative', scale: { domain: [0, end] }, title: 'seconds since the calls started' };
  const violationRules = violations.length ? [{ data: { values: violations }, mark: { type: 'rule', color: '#d62728', strokeWidth: 1.5 }, encoding: { x: { field: 'at', type: 'quantitative' } } }] : [];
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `soak seed ${seed}, ${Math.round((h.endMs - h.startMs) / 60_000)} min: faults, PDD and answers (${result.violations.length} violations${violations.length ? ', red lines' : ''})`,
    vconcat: [
      {
        width: WIDTH,
        height: 160,
        data: { values: lanes },
        mark: { type: 'bar', height: 10 },
        encoding: {
          x: { field: 'start', type: 'quantitative', scale: { domain: [0, end] }, title: null },
          x2: { field: 'end' },
          y: { field: 'kind', type: 'nominal', title: null },
          color: { field: 'failed', type: 'nominal', scale: { domain: [false, true], range: ['#e6550d', '#636363'] }, legend: { title: 'fault failed' } },
          tooltip: [{ field: 'kind' }, { field: 'target' }, { field: 'start' }, { field: 'end' }],
        },
      },
      {
        width: WIDTH,
        height: 200,
        layer: [
          {
            data: { values: pdd },
            mark: { type: 'line', strokeWidth: 1.2 },
            encoding: { x: { ...x, title: null }, y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: `PDD ms (log), per ${BIN_S} s` }, strokeDash: { field: 'series', type: 'nominal' }, color: { value: '#222' } },
          },
          ...violationRules,
        ],
      },
      {
        width: WIDTH,
        height: 200,
        layer: [
          {
            data: { values: answers },
            mark: { type: 'area' },
            encoding: { x, y: { field: 'perS', type: 'quantitative', stack: 'zero', title: 'answers per second' }, color: { field: 'answer', type: 'nominal', legend: { title: 'answer' } } },
          },
          ...violationRules,
        ],
      },
    ],
    resolve: { scale: { color: 'independent' } },
  } as unknown as TopLevelSpec;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The calls of the same account and the faults within 10 s of a violation. */
function around(h: SoakHistory, v: Violation): string {
  const rel = (ms: number) => `+${((ms - h.startMs) / 1000).toFixed(1)} s`;
  const calls = h.calls.filter((c) => (v.account === undefined || c.account === v.account) && Math.abs(c.inviteMs - v.atMs) < 10_000).slice(0, 12);
  const faults = h.faults.filter((f) => f.startMs < v.atMs + 10_000 && (f.endMs ?? h.endMs) > v.atMs - 10_000);
  const actions = h.operatorActions.filter((a) => (v.account === undefined || a.account === v.account) && Math.abs(a.atMs - v.atMs) < 60_000);
  const lines = [
    ...faults.map((f) => `fault ${f.kind} on ${f.target}: ${rel(f.startMs)} .. ${f.endMs ? rel(f.endMs) : 'end'}${f.marks.map((m) => `; ${m.label} ${rel(m.atMs)}`).join('')}`),
    ...actions.map((a) => `operator ${a.kind} ${a.account ?? ''} ${rel(a.atMs)}..${rel(a.doneMs)} ${a.ok ? 'ok' : 'FAILED'}`),
    ...calls.map((c) => `call ${c.callId} ${c.account} ${rel(c.inviteMs)} -> ${answerOf(c)} by ${c.edge ?? '?'}${c.decision ? ` [${c.decision}]` : ''}`),
  ];
  return `<pre>${esc(lines.join('\n'))}</pre>`;
}

function page(h: SoakHistory, result: CheckResult, s: SoakSummary, svg: string): string {
  const rows = (o: Record<string, unknown>) => Object.entries(o).map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'object' ? JSON.stringify(v) : String(v))}</td></tr>`).join('\n');
  const shown = result.violations.slice(0, 200);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>credit-edge soak seed ${s.seed}</title>
<style>body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1000px; color: #222; }
table { border-collapse: collapse; } th, td { text-align: left; padding: 3px 10px; border-bottom: 1px solid #eee; vertical-align: top; }
pre { background: #f6f6f6; padding: 6px; font-size: 12px; overflow-x: auto; }</style></head><body>
<h1>credit-edge soak: seed ${s.seed}, ${s.minutes} min</h1>
<table>${rows({ calls: s.calls, faults: s.faults, faults_by_kind: s.faults_by_kind, faults_skipped: s.faults_skipped, operator_actions: s.operator_actions, violations: s.violations, violations_by_kind: s.violations_by_kind, pdd_ms: s.pdd_ms, figures: s.figures, sip_server: s.sip_server, started_at: s.started_at })}</table>
<figure>${svg}<figcaption>Top: each fault's window, by kind (grey: the fault itself failed). Middle: p50 and p99 PDD of the calls placed in each ${BIN_S} s. Bottom: answers per second. Red lines: violations.</figcaption></figure>
<h2>Violations${result.violations.length > shown.length ? ` (first ${shown.length} of ${result.violations.length})` : ''}</h2>
${shown.length === 0 ? '<p>None.</p>' : shown.map((v) => `<h3>${esc(v.kind)} at +${((v.atMs - h.startMs) / 1000).toFixed(1)} s${v.account ? ` (${esc(v.account)})` : ''}</h3><p>${esc(v.detail)}</p>${around(h, v)}`).join('\n')}
<h2>How it was judged</h2>
<p>From the outside only: SIPp's message traces (every INVITE and its answer; the X-Credit-Decision header names the deciding edge, and each edge routes to its own carrier, so the answering carrier names the edge of a routed call), the runner's records of the accounts, the operator's actions and the faults, and the Redis history (Sentinel's switch events, MONITOR on every node for the controllers' writes, the audit stream). Never the edges' own logs. See bench/soak/checker.ts for each rule.</p>
</body></html>
`;
}
