import type { NodeDescription, SentinelDescription, TopologyDescription } from './topology.js';

/** A human summary of a topology description, one line per process, for the terminal. */
export function formatTopology(d: TopologyDescription): string {
  const lines = [`redis topology '${d.masterName}': master ${d.master.host}:${d.master.port}`];
  for (const n of d.nodes) lines.push('  ' + formatNode(n));
  for (const s of d.sentinels) lines.push('  ' + formatSentinel(s, d));
  return lines.join('\n');
}

function head(name: string, port: number, pid: number | undefined): string {
  return `${name.padEnd(11)} :${String(port).padEnd(6)} pid ${String(pid ?? '-').padEnd(8)}`;
}

function formatNode(n: NodeDescription): string {
  const parts = [head(n.name, n.port, n.pid)];
  if (n.state !== 'running') {
    parts.push(n.state.toUpperCase());
  } else if (n.error) {
    parts.push(`NOT ANSWERING (${n.error})`);
  } else if (n.role === 'master') {
    parts.push(`master   replicas ${n.connectedReplicas ?? 0}`);
  } else {
    const link = n.syncInProgress ? 'SYNCING' : n.linkStatus === 'up' ? 'link up' : 'LINK DOWN';
    parts.push(`replica  ${link}`);
  }
  if (n.keys !== undefined) parts.push(`keys ${n.keys}`);
  if (n.offset !== undefined) parts.push(`offset ${n.offset}`);
  if (n.linkCut) parts.push('(link cut)');
  return parts.join('  ');
}

function formatSentinel(s: SentinelDescription, d: TopologyDescription): string {
  const parts = [head(s.name, s.port, s.pid)];
  if (s.pid === undefined) parts.push('DOWN');
  else if (s.error) parts.push(`NOT ANSWERING (${s.error})`);
  else if (s.master) {
    const disagrees = s.master.port !== d.master.port ? ' (!)' : '';
    parts.push(`sentinel sees master :${s.master.port}${disagrees} [${s.flags ?? ''}]  replicas ${s.replicas}  other sentinels ${s.otherSentinels}`);
  }
  return parts.join('  ');
}
