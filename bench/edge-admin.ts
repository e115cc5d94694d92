import { setTimeout as sleep } from 'node:timers/promises';
import { adminRequest } from '../src/admin/client.js';

/**
 * What the benchmark reads from the edge under measurement, through its admin API (the edge runs
 * in its own process): readiness, a metric, the dataset it reads.
 */

/** The sum of every series of a metric in GET /metrics (Prometheus text), e.g. all causes of a counter. */
export async function metricSum(adminUrl: string, name: string): Promise<number> {
  return sumOfSeries(await metricsText(adminUrl), name);
}

export async function metricsText(adminUrl: string): Promise<string> {
  const { status, body } = await adminRequest({ url: adminUrl }, 'GET', '/metrics', 5000);
  if (status !== 200 || typeof body !== 'string') throw new Error(`GET ${adminUrl}/metrics: HTTP ${status}`);
  return body;
}

/** The local copy's hits and misses so far (credit_edge_local_copy_lookups_total). */
export async function localCopyCounts(adminUrl: string): Promise<{ hits: number; misses: number }> {
  const text = await metricsText(adminUrl);
  const name = 'credit_edge_local_copy_lookups_total';
  return { hits: sumOfSeries(text, name, 'result="hit"'), misses: sumOfSeries(text, name, 'result="miss"') };
}

/** Pure part of metricSum: sample lines `name value` or `name{labels} value`, optionally only those whose labels contain `label` (each of them). */
export function sumOfSeries(text: string, name: string, label?: string | string[]): number {
  const labels = label === undefined ? [] : [label].flat();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name) || (line[name.length] !== ' ' && line[name.length] !== '{')) continue;
    const block = line.slice(name.length, line.indexOf('}') + 1);
    if (!labels.every((l) => block.includes(l))) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

export interface EdgeDataset {
  id: string | null;
  replicas: { name: string; dataset: string }[];
  absenceGuard: unknown;
}

/** GET /dataset: which dataset the edge reads, each replica's dataset problem, the mass-absence guard. */
export async function readDataset(adminUrl: string): Promise<EdgeDataset> {
  const { status, body } = await adminRequest({ url: adminUrl }, 'GET', '/dataset', 5000);
  if (status !== 200) throw new Error(`GET ${adminUrl}/dataset: HTTP ${status}`);
  return body as EdgeDataset;
}

/** Waits until GET /readyz (or `route`) answers 200: for an edge, connected to the SIP server with a replica in sync. */
export async function waitReady(adminUrl: string, timeoutMs: number, alive: () => boolean, route = '/readyz'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    if (!alive()) throw new Error('the process exited');
    try {
      const { status, body } = await adminRequest({ url: adminUrl }, 'GET', route, 2000);
      if (status === 200) return;
      last = `HTTP ${status} ${JSON.stringify(body)}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(50);
  }
  throw new Error(`${route} was not 200 after ${timeoutMs} ms (${last})`);
}
