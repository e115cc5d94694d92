import type { DemoAnswer } from './demo-calls.js';
import type { NodeDescription, TopologyDescription } from './topology.js';

/**
 * What the demo shows a person, as text: where things listen, the demo calls' answers, what to
 * try next, and a short status that refreshes. Pure functions of what the demo knows; the logs go
 * to a file, not here.
 */

export interface DemoPlaces {
  runDir: string;
  configFile: string;
  logFile: string;
  pid: number;
  redis: { masterName: string; master: number; replicas: number[]; sentinels: number[] };
  /** Absent with --no-sip (Redis only). */
  sip?: {
    target: string;
    carrierPort: number;
    edgeAdmin: string;
    /** Absent without Sentinels. */
    controllerAdmin?: string;
    /** The SIPp scenario for hand-placed calls, relative to the current folder when it is inside it. */
    scenario: string;
  };
}

export function formatPlaces(p: DemoPlaces): string {
  const ports = (list: number[]) => list.map((port) => `:${port}`).join(' ') || 'none';
  const lines = [
    `credit-edge demo: everything on 127.0.0.1; pid ${p.pid}${p.sip ? ' (runs the edge and the controller; kill -HUP reloads the edge)' : ''}`,
    `  redis       master :${p.redis.master}, replicas ${ports(p.redis.replicas)}, sentinels ${ports(p.redis.sentinels)} (master name ${p.redis.masterName})`,
  ];
  if (p.sip) {
    lines.push(
      `  sip         ${p.sip.target} udp+tcp (embedded engine) -> edge -> carrier (SIPp UAS) 127.0.0.1:${p.sip.carrierPort}`,
      `  edge        admin ${p.sip.edgeAdmin}   metrics ${p.sip.edgeAdmin}/metrics`,
    );
    if (p.sip.controllerAdmin) lines.push(`  controller  admin ${p.sip.controllerAdmin}   metrics ${p.sip.controllerAdmin}/metrics`);
  }
  lines.push(`  config      ${p.configFile}`, `  logs        ${p.logFile}   (pino JSON, every component)`);
  return lines.join('\n');
}

export function formatAnswers(answers: DemoAnswer[]): string {
  const width = Math.max(...answers.map((a) => a.answer.length + (a.completed ? ', call completed'.length : 0)), 'answer'.length);
  const lines = ['One call per demo account (SIPp caller -> edge -> carrier):', `  ${'account'.padEnd(14)} ${'answer'.padEnd(width)}  Reason header`];
  for (const a of answers) {
    const answer = a.answer + (a.completed ? ', call completed' : '');
    const unexpected = a.asExpected ? '' : `   UNEXPECTED (expected ${a.expect})`;
    lines.push(`  ${a.account.padEnd(14)} ${answer.padEnd(width)}  ${a.reason ?? '-'}${unexpected}`);
  }
  return lines.join('\n');
}

/** Commands to try against the running demo, in the README's `credit-edge ...` form. */
export function formatTryNext(p: DemoPlaces): string {
  const config = `--config ${p.configFile}`;
  const lines = ['Try (the CLI finds this demo through --config; see README "The demo"):'];
  if (p.sip) {
    const sipp = `sipp ${p.sip.target} -sf ${p.sip.scenario} -s callee -m 1`;
    lines.push(
      `  credit-edge replicas ${config}`,
      `  credit-edge account show acct-ok ${config}`,
      `  curl -s ${p.sip.edgeAdmin}/metrics | grep ^credit_edge_decisions_total`,
      `  curl -s ${p.sip.edgeAdmin}/accounts/acct-ok`,
      `  credit-edge reload ${config}          (after editing the config file)`,
      `  ${sipp} -d 2000 -key account acct-ok`,
    );
    if (p.sip.controllerAdmin) {
      lines.push(
        `  ${sipp.replace('demo-call.xml', 'demo-long-call.xml')} -trace_msg -key account acct-low   (credit for ~6 s: blocked, then ended with a BYE ~1 s later)`,
        `  credit-edge account set acct-low balance=10 ${config}   (top-up: the controller lifts its block)`,
        `  credit-edge audit acct-low ${config}`,
      );
    }
  } else {
    lines.push(`  credit-edge account show acct-ok ${config}`);
  }
  lines.push('Ctrl-C stops everything the demo started.');
  return lines.join('\n');
}

export interface DemoStatus {
  at: Date;
  intervalS: number;
  topology: TopologyDescription;
  edge?: { ready: boolean; replicasInSync: number; replicas: number; calls: number; decisions: number; cached: number };
  controller?: string;
}

/** A few lines, the same count every time (the console rewrites them in place on a terminal). */
export function formatStatus(s: DemoStatus): string {
  const t = s.topology;
  const master = t.nodes.find((n) => n.port === t.master.port);
  const replicas = t.nodes.filter((n) => n !== master).map((n) => `:${n.port} ${nodeState(n)}`);
  const agree = t.sentinels.filter((x) => x.master?.port === t.master.port).length;
  const redis = [
    `master :${t.master.port} ${master ? nodeState(master) : 'unknown'}${master?.keys !== undefined ? `, keys ${master.keys}` : ''}`,
    `replicas ${replicas.join(', ') || 'none'}`,
    ...(t.sentinels.length > 0 ? [`sentinels ${agree}/${t.sentinels.length} see :${t.master.port}`] : []),
  ].join(' | ');
  const lines = [`status ${s.at.toTimeString().slice(0, 8)} (every ${s.intervalS} s)`, `  redis       ${redis}`];
  if (s.edge) {
    const e = s.edge;
    lines.push(
      `  edge        ${e.ready ? 'ready' : 'NOT READY'} | replicas in sync ${e.replicasInSync}/${e.replicas} | calls in progress ${e.calls} | decisions ${e.decisions} | cached accounts ${e.cached}`,
    );
  }
  if (s.controller !== undefined) lines.push(`  controller  ${s.controller}`);
  return lines.join('\n');
}

function nodeState(n: NodeDescription): string {
  if (n.state !== 'running') return n.state.toUpperCase();
  if (n.error) return 'NOT ANSWERING';
  if (n.role === 'master') return 'up';
  if (n.role === 'replica') return n.syncInProgress ? 'SYNCING' : n.linkStatus === 'up' ? 'link up' : 'LINK DOWN';
  return 'unknown';
}
