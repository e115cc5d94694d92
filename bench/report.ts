import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import type { CapacityStep, Summary } from './bench.js';
import type { TopFunctions } from './cpu-profile.js';
import type { FaultWindow } from './load.js';
import type { ProfileName, ResolvedOptions } from './profiles.js';
import { cdfOf, figuresOf, type JudgedCall } from './stats.js';

/**
 * The run's report: one HTML page with SVG charts drawn by vega-lite (compiled to vega, rendered
 * headless in Node, no canvas): PDD over time with the faults marked, the PDD CDF, outcomes over
 * time, and the comparison (gated / ungated, healthy / faults, or the capacity steps). The PDD-over-
 * time chart is also written alone as pdd-over-time.svg, for the README.
 */

export interface ReportArm {
  label: string;
  gated: boolean;
  cps: number;
  t0Ms: number;
  endMs: number;
  calls: JudgedCall[];
  faults: FaultWindow[];
}

export interface ReportInput {
  profile: ProfileName;
  description: string;
  options: ResolvedOptions;
  summary: Summary;
  arms: ReportArm[];
  /** Named PDD samples for the CDF and the comparison. */
  groups: { name: string; pdds: number[] }[];
  steps?: CapacityStep[];
  /** With --profile: the edge's top functions by self time, per mode (gated / ungated). */
  cpuTop?: ({ name: string } & TopFunctions)[];
}

const WIDTH = 860;

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export async function writeReport(input: ReportInput, dir: string): Promise<{ html: string; svg: string }> {
  const origin = Math.min(...input.arms.map((a) => a.t0Ms));
  const charts: { title: string; caption: string; spec: TopLevelSpec }[] = [
    { title: 'PDD over time', caption: 'p50 and p99 PDD of the INVITEs sent in each second (log scale). Shaded: arms (gated / ungated); red: fault windows and marks.', spec: overTimeSpec(input, origin) },
    { title: 'PDD distribution (CDF)', caption: 'Percentile of calls answered (18x or final) within x ms, from HDR histograms.', spec: cdfSpec(input) },
    { title: 'Outcomes over time', caption: 'Calls per second by answer; red: fault windows.', spec: outcomesSpec(input, origin) },
    input.steps ? { title: 'Capacity steps', caption: `p50 and p99 PDD per rate step; the line is the ${input.options.p99LimitMs} ms limit.`, spec: capacitySpec(input) } : { title: 'Comparison', caption: 'PDD percentiles per group.', spec: comparisonSpec(input) },
  ];
  const svgs = await Promise.all(charts.map((c) => renderSvg(c.spec)));
  const svgFile = path.join(dir, 'pdd-over-time.svg');
  writeFileSync(svgFile, svgs[0]!);
  const htmlFile = path.join(dir, 'report.html');
  writeFileSync(htmlFile, page(input, charts.map((c, i) => ({ ...c, svg: svgs[i]! }))));
  return { html: htmlFile, svg: svgFile };
}

// ------------------------------------------------------------------ data

function faultRows(input: ReportInput, origin: number) {
  return input.arms.flatMap((a) =>
    a.faults.map((w) => ({ label: w.label, start: (w.startMs - origin) / 1000, end: ((w.endMs ?? a.endMs) - origin) / 1000 })),
  );
}

function markRows(input: ReportInput, origin: number) {
  return input.arms.flatMap((a) => a.faults.flatMap((w) => w.marks.map((m) => ({ label: m.label, at: (m.atMs - origin) / 1000 }))));
}

function armRows(input: ReportInput, origin: number) {
  return input.arms.map((a) => ({ arm: a.label, mode: a.gated ? 'gated' : 'ungated', start: (a.t0Ms - origin) / 1000, end: (a.endMs - origin) / 1000 }));
}

/** Per bin of `binS` seconds: p50 / p99 / max of the PDDs of INVITEs sent in it. */
function binnedPdd(input: ReportInput, origin: number, binS: number) {
  const rows: { t: number; arm: string; series: string; ms: number }[] = [];
  for (const a of input.arms) {
    const bins = new Map<number, number[]>();
    for (const c of a.calls) {
      if (c.pddMs === undefined) continue;
      const b = Math.floor((c.atUs / 1000 - origin) / 1000 / binS);
      const list = bins.get(b) ?? [];
      list.push(c.pddMs);
      bins.set(b, list);
    }
    for (const [b, pdds] of [...bins.entries()].sort((x, y) => x[0] - y[0])) {
      const f = figuresOf(pdds);
      if (!f) continue;
      const t = (b + 0.5) * binS;
      // The log scale cannot show 0: a sub-µs value is drawn at 1 µs.
      const at = (ms: number) => Math.max(ms, 0.001);
      rows.push({ t, arm: a.label, series: 'p50', ms: at(f.p50) }, { t, arm: a.label, series: 'p99', ms: at(f.p99) });
    }
  }
  return rows;
}

// ------------------------------------------------------------------ specs

const faultLayers = (faults: ReturnType<typeof faultRows>, marks: ReturnType<typeof markRows>) =>
  [
    ...(faults.length
      ? [
          { data: { values: faults }, mark: { type: 'rect', color: '#d62728', opacity: 0.15 }, encoding: { x: { field: 'start', type: 'quantitative' }, x2: { field: 'end' } } },
          {
            data: { values: faults },
            mark: { type: 'text', align: 'left', baseline: 'top', dx: 3, dy: 3, fontSize: 10, color: '#a01010' },
            encoding: { x: { field: 'start', type: 'quantitative' }, y: { value: 0 }, text: { field: 'label' } },
          },
        ]
      : []),
    ...(marks.length
      ? [
          { data: { values: marks }, mark: { type: 'rule', color: '#a01010', strokeDash: [4, 3] }, encoding: { x: { field: 'at', type: 'quantitative' } } },
          {
            data: { values: marks },
            mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 3, fontSize: 10, color: '#a01010', angle: 0 },
            encoding: { x: { field: 'at', type: 'quantitative' }, y: { value: 260 }, text: { field: 'label' } },
          },
        ]
      : []),
  ] as const;

function overTimeSpec(input: ReportInput, origin: number): TopLevelSpec {
  const arms = armRows(input, origin);
  const showArms = input.arms.length > 1;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: WIDTH,
    height: 280,
    title: `${input.profile}: PDD over time (INVITE -> first 18x or final)`,
    layer: [
      ...(showArms
        ? [
            {
              data: { values: arms },
              mark: { type: 'rect', opacity: 0.08 },
              encoding: {
                x: { field: 'start', type: 'quantitative' },
                x2: { field: 'end' },
                color: { field: 'mode', type: 'nominal', scale: { domain: ['gated', 'ungated'], range: ['#1f77b4', '#2ca02c'] }, legend: { title: 'arm' } },
              },
            },
            {
              data: { values: arms },
              mark: { type: 'text', align: 'left', baseline: 'top', dx: 2, dy: 14, fontSize: 10, color: '#555' },
              encoding: { x: { field: 'start', type: 'quantitative' }, y: { value: 0 }, text: { field: 'arm' } },
            },
          ]
        : []),
      ...faultLayers(faultRows(input, origin), markRows(input, origin)),
      {
        data: { values: binnedPdd(input, origin, 1) },
        mark: { type: 'line', strokeWidth: 1.2, point: false },
        encoding: {
          x: { field: 't', type: 'quantitative', title: 'seconds since the first measured arm started' },
          y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'PDD (ms, log)' },
          strokeDash: { field: 'series', type: 'nominal', sort: ['p50', 'p99'], legend: { title: 'per second' } },
          // One line per series and arm: no line drawn across the gap between arms.
          detail: [{ field: 'series' }, { field: 'arm' }],
          color: { value: '#222' },
        },
      },
    ],
    resolve: { scale: { color: 'independent' } },
  } as unknown as TopLevelSpec;
}

function cdfSpec(input: ReportInput): TopLevelSpec {
  const rows = input.groups.flatMap((g) => cdfOf(g.pdds).map((p) => ({ group: `${g.name} (n=${g.pdds.length})`, pct: p.pct, ms: Math.max(p.ms, 0.001) })));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: WIDTH,
    height: 260,
    title: 'PDD distribution',
    data: { values: rows },
    mark: { type: 'line', point: { size: 18 }, interpolate: 'step-after' },
    encoding: {
      x: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'PDD (ms, log)' },
      y: { field: 'pct', type: 'quantitative', title: 'percentile of calls', scale: { domain: [0, 100] } },
      color: { field: 'group', type: 'nominal', title: null, legend: { labelLimit: 320, orient: 'bottom-right' } },
    },
  } as unknown as TopLevelSpec;
}

// An array for the order: '503' as an object key would sort first.
const OUTCOME_ORDER = ['routed', '403-not-enabled', '403-no-credit', '403-forbidden', '403-other', '503', 'other', 'no-answer'];
const OUTCOME_COLORS: Record<string, string> = {
  routed: '#2ca02c',
  '403-not-enabled': '#9467bd',
  '403-no-credit': '#8c564b',
  '403-forbidden': '#7f7f7f',
  '403-other': '#e377c2',
  '503': '#ff7f0e',
  other: '#bcbd22',
  'no-answer': '#d62728',
};

function outcomesSpec(input: ReportInput, origin: number): TopLevelSpec {
  // Stacked per whole second here, drawn as rects: exact bins whatever the axis extent.
  const counts = new Map<number, Map<string, number>>();
  for (const a of input.arms) {
    for (const c of a.calls) {
      const t = Math.floor((c.atUs / 1000 - origin) / 1000);
      const bin = counts.get(t) ?? new Map<string, number>();
      bin.set(c.outcome, (bin.get(c.outcome) ?? 0) + 1);
      counts.set(t, bin);
    }
  }
  const order = OUTCOME_ORDER;
  const rows: { t: number; t2: number; outcome: string; y: number; y2: number; n: number }[] = [];
  for (const [t, bin] of counts) {
    let y = 0;
    for (const outcome of order) {
      const n = bin.get(outcome) ?? 0;
      if (n === 0) continue;
      rows.push({ t: t + 0.04, t2: t + 0.96, outcome, y, y2: y + n, n });
      y += n;
    }
  }
  const outcomes = order.filter((o) => rows.some((r) => r.outcome === o));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: WIDTH,
    height: 220,
    title: 'Outcomes per second',
    layer: [
      ...faultLayers(faultRows(input, origin), []),
      {
        data: { values: rows },
        mark: { type: 'rect' },
        encoding: {
          x: { field: 't', type: 'quantitative', title: 'seconds since the first measured arm started' },
          x2: { field: 't2' },
          y: { field: 'y', type: 'quantitative', title: 'calls per second' },
          y2: { field: 'y2' },
          color: { field: 'outcome', type: 'nominal', scale: { domain: outcomes, range: outcomes.map((o) => OUTCOME_COLORS[o]!) }, title: 'answer' },
        },
      },
    ],
  } as unknown as TopLevelSpec;
}

function comparisonSpec(input: ReportInput): TopLevelSpec {
  const rows = input.groups.flatMap((g) => {
    const f = figuresOf(g.pdds);
    return f ? (['p50', 'p90', 'p99', 'p999'] as const).map((p) => ({ group: g.name, percentile: p === 'p999' ? 'p99.9' : p, ms: f[p] })) : [];
  });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'PDD percentiles by group',
    data: { values: rows },
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'percentile', type: 'nominal', sort: ['p50', 'p90', 'p99', 'p99.9'], title: null },
      xOffset: { field: 'group', type: 'nominal' },
      y: { field: 'ms', type: 'quantitative', title: 'PDD (ms)' },
      color: { field: 'group', type: 'nominal', title: null, legend: { labelLimit: 320 } },
      tooltip: [{ field: 'group' }, { field: 'percentile' }, { field: 'ms' }],
    },
    width: WIDTH / 2,
    height: 240,
  } as unknown as TopLevelSpec;
}

function capacitySpec(input: ReportInput): TopLevelSpec {
  const rows = (input.steps ?? []).flatMap((s) => [
    { cps: s.cps, series: 'p50', ms: s.pdd_p50_ms },
    { cps: s.cps, series: 'p99', ms: s.pdd_p99_ms },
  ]);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: WIDTH / 2,
    height: 240,
    title: 'PDD by offered rate',
    layer: [
      {
        data: { values: rows },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'cps', type: 'quantitative', title: 'calls per second offered' },
          y: { field: 'ms', type: 'quantitative', title: 'PDD (ms)' },
          color: { field: 'series', type: 'nominal', title: null },
        },
      },
      { data: { values: [{ limit: input.options.p99LimitMs }] }, mark: { type: 'rule', color: '#d62728', strokeDash: [4, 3] }, encoding: { y: { field: 'limit', type: 'quantitative' } } },
    ],
  } as unknown as TopLevelSpec;
}

// ------------------------------------------------------------------ page

function cpuTopSection(modes: ReportInput['cpuTop']): string {
  if (!modes || modes.length === 0) return '';
  const table = (m: NonNullable<ReportInput['cpuTop']>[number]) =>
    `<h3>${esc(m.name)}: ${m.files} edge process(es), ${m.busyMs} ms busy, ${m.idleMs} ms idle</h3><table><tr><th>self ms</th><th>% of busy</th><th>function</th><th>where</th></tr>` +
    m.top.map((f) => `<tr><td>${f.selfMs}</td><td>${f.pct}</td><td>${esc(f.functionName)}</td><td>${esc(f.location)}</td></tr>`).join('\n') +
    '</table>';
  return `<h2>Edge CPU profile: top functions by self time</h2>
<p class="note">From the edge's node --cpu-prof profiles (each covers a whole edge process: start-up, warm-up and the measured arm), samples added up by function (name + script:line) over all call paths.</p>
${modes.map(table).join('\n')}`;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function page(input: ReportInput, charts: { title: string; caption: string; svg: string }[]): string {
  const s = input.summary;
  const row = (k: string, v: unknown) => `<tr><th>${esc(k)}</th><td>${esc(v === null || v === undefined ? '-' : typeof v === 'object' ? JSON.stringify(v) : String(v))}</td></tr>`;
  const headline: [string, unknown][] = [
    ['profile', s.profile],
    ['rate (calls/s)', s.cps],
    ['calls (gated)', s.calls],
    ['failed calls', s.failed_calls],
    ['PDD p50 / p90 / p99 / max (ms)', `${s.pdd_p50_ms} / ${s.pdd_p90_ms} / ${s.pdd_p99_ms} / ${s.pdd_max_ms}`],
    ['gate cost ratio p50 / p99', s.ratio_p50 === null ? '-' : `${s.ratio_p50} / ${s.ratio_p99}`],
    ['the edge\'s decision p50 (ms), gated / ungated: the gate inside the edge (µs)', s.decision_times ? `${s.decision_times.gated_p50_ms} / ${s.decision_times.ungated_p50_ms}: ${s.decision_times.gate_us}` : '-'],
    ['false 403', s.false_403],
    ['unexpected 503', s.unexpected_503],
    ['503 answered / no answer', `${s.answered_503} / ${s.no_answer}`],
    ['rejections from the stale cache', s.from_cache],
    ['edge CPU per call (µs), gated / ungated', `${s.edge_cpu_us_per_call.gated ?? '-'} / ${s.edge_cpu_us_per_call.ungated ?? '-'}`],
    ['edge CPU per call during the warm-ups (µs), gated / ungated', s.edge_cpu_us_per_call_warmup ? `${s.edge_cpu_us_per_call_warmup.gated ?? '-'} / ${s.edge_cpu_us_per_call_warmup.ungated ?? '-'}` : 'no warm-up'],
    ['SIP server CPU per call (µs), gated / ungated', s.sip_server_cpu_us_per_call ? `${s.sip_server_cpu_us_per_call.gated ?? '-'} / ${s.sip_server_cpu_us_per_call.ungated ?? '-'}` : 'not ours (external)'],
    ['edge peak RSS (MB)', s.edge_rss_mb],
    ['outcomes', s.outcomes],
    ["SIPp rtd cross-check (whole ms) p50 / p99 / mean; trace mean", `${s.rtd_cross_check.rtd_p50_ms} / ${s.rtd_cross_check.rtd_p99_ms} / ${s.rtd_cross_check.rtd_mean_ms}; ${s.rtd_cross_check.trace_mean_ms}`],
    ['host', `${s.host.cpus} CPUs, load average ${s.host.loadavg_start.join(' ')} at start, ${s.host.loadavg_end.join(' ')} at end, Node ${s.host.node}`],
  ];
  if (s.phases) headline.push(['healthy p99 / faulted p99 (ms), ratio', `${s.phases.healthy?.p99 ?? '-'} / ${s.phases.faulted?.p99 ?? '-'}, ${s.phases.fault_ratio_p99 ?? '-'}`]);
  if (s.capacity) headline.push(['capacity: highest rate under the limits', s.capacity.max_cps_passing]);
  if (s.controller) headline.push(['controller', s.controller]);
  const targets = Object.entries(s.targets)
    .map(([k, t]) => `<tr><th>${esc(k)}</th><td>${esc(t.target)}</td><td>${esc(String(t.value ?? '-'))}</td><td class="${t.met === true ? 'ok' : t.met === false ? 'bad' : ''}">${t.met === null ? 'n/a' : t.met ? 'met' : 'NOT met'}</td></tr>`)
    .join('\n');
  const o = input.options;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>credit-edge bench: ${esc(input.profile)} ${esc(s.started_at)}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 980px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 20px; } th, td { text-align: left; padding: 3px 10px; border-bottom: 1px solid #eee; vertical-align: top; }
th { font-weight: 600; color: #444; } .ok { color: #1a7f1a; font-weight: 600; } .bad { color: #c01818; font-weight: 600; }
figure { margin: 18px 0 28px; } figcaption { color: #555; font-size: 13px; } .note { color: #555; font-size: 13px; }
</style></head><body>
<h1>credit-edge PDD benchmark: ${esc(input.profile)}</h1>
<p>${esc(input.description)} Started ${esc(s.started_at)}, ${s.duration_s} s in all. Options: ${esc(JSON.stringify({ cps: o.cps, duration_s: o.durationS, accounts: o.accounts, warmup_s: o.warmupS, ...(input.profile === 'baseline' && { pairs: o.pairs }) }))}.</p>
<h2>Figures</h2><table>${headline.map(([k, v]) => row(k, v)).join('\n')}</table>
<h2>Targets</h2><table><tr><th></th><th>target</th><th>value</th><th></th></tr>${targets}</table>
${charts.map((c) => `<figure><h2>${esc(c.title)}</h2>${c.svg}<figcaption>${esc(c.caption)}</figcaption></figure>`).join('\n')}
${cpuTopSection(input.cpuTop)}
<h2>How this was measured</h2>
<ul class="note">
<li>PDD = time from SIPp sending the INVITE to SIPp receiving the first 180/183 or final response, per call, from the microsecond timestamps of SIPp's message trace (-trace_msg); SIPp takes each stamp with gettimeofday() right after sendto() returns, and when it processes a received message; on a busy machine a descheduled SIPp stamps late, so single calls can be off by the time it waited for a CPU. SIPp's rtd (whole ms) is only a cross-check. 100 Trying does not count.</li>
<li>Processes: ${esc(s.edge_process)}. SIP server: ${esc(s.sip_server)}.</li>
<li>CPU per call: user + system time of the process from /proc/&lt;pid&gt;/stat, read when the arm's SIPp starts and when it ends (warm-up excluded), over the calls of the arm.${s.cpu_profiles ? ' This run had the edge under --cpu-prof: its CPU figures include the profiler\'s cost.' : ''}</li>
<li>The carrier is a SIPp UAS that rings and answers at once.</li>
<li>Accounts: ${o.accounts} (about 70% good, 10% disabled, 10% out of credit, 10% absent from Redis), called with a skewed popularity; every arm places the same call sequence, each on a freshly started edge after a ${o.warmupS} s warm-up.</li>
<li>Gate cost ratio: gated / ungated PDD over calls for good accounts (routed in both arms). Ungated = config <code>bypass_gating: true</code>: the same edge and engine, every identified call routed to the default route with no lookup or decision.</li>
<li>false 403: a 403 for an account with credit. unexpected 503: a 503 for an account an earlier call of the same arm had been answered for from its found state (so the edge's cache held it). failed calls: any answer other than the one the account should get (including correct 503s while the state was unknown).</li>
<li>Timings are from a 2-core machine shared with other work: compare within a run, not across runs.</li>
</ul>
</body></html>
`;
}
