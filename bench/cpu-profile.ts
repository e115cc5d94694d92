import { existsSync, readFileSync } from 'node:fs';

/**
 * Reads the .cpuprofile files `node --cpu-prof` writes (the edge under --profile) and ranks
 * functions by self time: each sample's time (the gap to the next sample) goes to the node it hit;
 * nodes of the same function (name + script:line) are added up across call paths and files.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

export interface FunctionSelfTime {
  functionName: string;
  /** script:line (1-based), paths relative to the project; empty for V8's own entries. */
  location: string;
  selfMs: number;
  /** Share of the busy (non-idle) time, percent. */
  pct: number;
}

export interface TopFunctions {
  /** Busy (non-idle) time sampled, ms; the basis of pct. */
  busyMs: number;
  idleMs: number;
  files: number;
  top: FunctionSelfTime[];
}

/** Self time per function over the given profiles (missing files are skipped), the `limit` largest. */
export function topFunctions(files: string[], limit = 25, root = ''): TopFunctions | undefined {
  const self = new Map<string, { functionName: string; location: string; us: number }>();
  let idleUs = 0;
  let busyUs = 0;
  let read = 0;
  for (const file of files) {
    if (!existsSync(file)) continue;
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    read++;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const samples = profile.samples ?? [];
    const deltas = profile.timeDeltas ?? [];
    for (let i = 0; i < samples.length; i++) {
      // timeDeltas[i] is the gap before sample i: the time spent in sample i is the next gap.
      const us = Math.max(0, deltas[i + 1] ?? 0);
      const node = byId.get(samples[i]!);
      if (!node) continue;
      const { functionName, url, lineNumber } = node.callFrame;
      if (functionName === '(idle)') {
        idleUs += us;
        continue;
      }
      busyUs += us;
      const location = url ? `${shortUrl(url, root)}:${lineNumber + 1}` : '';
      const key = `${functionName}\u0000${location}`;
      const entry = self.get(key) ?? { functionName: functionName || '(anonymous)', location, us: 0 };
      entry.us += us;
      self.set(key, entry);
    }
  }
  if (read === 0) return undefined;
  const top = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, limit)
    .map((e) => ({ functionName: e.functionName, location: e.location, selfMs: Math.round(e.us / 100) / 10, pct: busyUs > 0 ? Math.round((e.us / busyUs) * 1000) / 10 : 0 }));
  return { busyMs: Math.round(busyUs / 1000), idleMs: Math.round(idleUs / 1000), files: read, top };
}

function shortUrl(url: string, root: string): string {
  const path = url.startsWith('file://') ? decodeURIComponent(url.slice('file://'.length)) : url;
  return root && path.startsWith(root + '/') ? path.slice(root.length + 1) : path;
}
