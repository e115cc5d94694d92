import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { placeDemoCalls } from '../../src/dev/demo-calls.js';
import { startLocalSystem, type LocalSystem } from '../../src/dev/demo-system.js';
import { onProcessExit } from '../../src/dev/exit-cleanup.js';
import { freePortAhead } from '../../src/dev/ports.js';
import { startTopology, type Topology } from '../../src/dev/topology.js';
import { silentLogger } from '../../src/log.js';
import { until } from '../helpers/controller.js';

/**
 * A real Prometheus server (Debian package prometheus, installed by scripts/setup.sh) scrapes a
 * running edge and controller, started from a config file as production runs them, and loads the
 * alert rules of deploy/prometheus/: its own API says the targets are up, the rules loaded and
 * evaluated without error, and every metric the rules name is among what it scraped.
 */

const RULES = path.resolve('deploy/prometheus/credit-edge-alerts.yml');

let dir: string;
let topology: Topology;
let system: LocalSystem;
let prometheus: ChildProcess;
let api: string;

async function get<T>(pathname: string): Promise<T> {
  const res = await fetch(api + pathname);
  const body = (await res.json()) as { status: string; data: T };
  if (body.status !== 'success') throw new Error(`${pathname}: ${JSON.stringify(body)}`);
  return body.data;
}

interface Target {
  labels: { job: string; instance: string };
  health: string;
  lastError: string;
}
interface RuleGroup {
  name: string;
  file: string;
  rules: { name: string; type: string; health: string; lastError?: string }[];
}

beforeAll(async () => {
  const binary = spawnSync('sh', ['-c', 'command -v prometheus'], { encoding: 'utf8' }).stdout.trim();
  if (!binary) throw new Error('prometheus is not installed: run scripts/setup.sh (Debian package prometheus)');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credit-edge-prometheus-'));
  topology = await startTopology({ replicas: 2, sentinels: 1 });
  await topology.seedFile('config/demo-accounts.yaml');
  system = await startLocalSystem({
    topology,
    dir,
    sip: { host: '127.0.0.1', port: await freePortAhead({ udp: true }) },
    edgeAdmin: { host: '127.0.0.1', port: await freePortAhead() },
    controllerAdmin: { host: '127.0.0.1', port: await freePortAhead() },
    logger: silentLogger,
  });
  // Decisions exist as series only once calls were decided.
  await placeDemoCalls(system.sipTarget, silentLogger);

  const edgeAdmin = system.edge.admin;
  const controllerAdmin = system.controller!.admin;
  fs.writeFileSync(
    path.join(dir, 'prometheus.yml'),
    stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [RULES],
      scrape_configs: [
        { job_name: 'credit-edge', static_configs: [{ targets: [`${edgeAdmin.host}:${edgeAdmin.port}`] }] },
        { job_name: 'credit-controller', static_configs: [{ targets: [`${controllerAdmin.host}:${controllerAdmin.port}`] }] },
      ],
    }),
  );
  const port = await freePortAhead();
  api = `http://127.0.0.1:${port}/api/v1`;
  const log = fs.openSync(path.join(dir, 'prometheus.log'), 'w');
  prometheus = spawn(
    binary,
    [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
    { stdio: ['ignore', log, log], detached: true },
  );
  fs.closeSync(log);
  const child = prometheus;
  onProcessExit(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await until('Prometheus to answer', 30_000, async () => {
    if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}: ${fs.readFileSync(path.join(dir, 'prometheus.log'), 'utf8').slice(-2000)}`);
    return fetch(`http://127.0.0.1:${port}/-/ready`).then((r) => r.ok, () => false);
  });
});

afterAll(async () => {
  if (prometheus && prometheus.exitCode === null && prometheus.signalCode === null) {
    const exited = new Promise((resolve) => prometheus.once('exit', resolve));
    prometheus.kill('SIGTERM');
    await exited;
  }
  await system?.stop();
  await topology?.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('Prometheus scraping the edge and the controller', () => {
  it('scrapes both targets: up', async () => {
    const targets = await until('both targets scraped', 30_000, async () => {
      const { activeTargets } = await get<{ activeTargets: Target[] }>('/targets');
      return activeTargets.length === 2 && activeTargets.every((t) => t.health !== 'unknown') && activeTargets;
    });
    expect(targets.map((t) => [t.labels.job, t.health, t.lastError]).sort()).toEqual([
      ['credit-controller', 'up', ''],
      ['credit-edge', 'up', ''],
    ]);
  });

  it('loads every alert rule of deploy/prometheus/ and evaluates each without error', async () => {
    const inFile = (parse(fs.readFileSync(RULES, 'utf8')) as { groups: { rules: { alert: string }[] }[] }).groups.flatMap((g) => g.rules.map((r) => r.alert));
    const rules = await until('every rule evaluated', 30_000, async () => {
      const { groups } = await get<{ groups: RuleGroup[] }>('/rules');
      const all = groups.flatMap((g) => g.rules);
      return all.length > 0 && all.every((r) => r.health !== 'unknown') && all;
    });
    expect(rules.map((r) => r.name).sort()).toEqual([...inFile].sort());
    for (const rule of rules) {
      expect(rule.type, rule.name).toBe('alerting');
      expect([rule.health, rule.lastError ?? ''], rule.name).toEqual(['ok', '']);
    }
  });

  it('has scraped every metric the rules name (its HELP and TYPE, even before a first sample)', async () => {
    const named = [...new Set(fs.readFileSync(RULES, 'utf8').match(/\bcredit_(?:edge|controller)_[a-z_]+/g) ?? [])];
    // Prometheus keeps the metadata of every metric a target exposes, also a labelled counter
    // that has no series yet (e.g. lookups that were never unknown).
    const known = (metadata: Record<string, unknown>, name: string) => name in metadata || name.replace(/_(bucket|sum|count)$/, '') in metadata;
    const metadata = await until('the named metrics scraped', 30_000, async () => {
      const m = await get<Record<string, unknown>>('/metadata');
      return named.every((n) => known(m, n)) && m;
    }).catch(() => get<Record<string, unknown>>('/metadata'));
    for (const name of named) expect(known(metadata, name), name).toBe(true);
    // So it is: no decision came from the cache here, yet the counter is known.
    expect(await get<string[]>('/label/__name__/values')).not.toContain('credit_edge_stale_serves_total');
    expect(known(metadata, 'credit_edge_stale_serves_total')).toBe(true);
  });

  it('reads the values the running system has: replicas in sync, the controller acting', async () => {
    const query = async (q: string) => (await get<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(`/query?query=${encodeURIComponent(q)}`)).result;
    expect((await query('credit_edge_replica_health{state="in-sync"}')).map((r) => r.value[1])).toEqual(['1', '1']);
    expect((await query('credit_controller_leader')).map((r) => r.value[1])).toEqual(['1']);
    expect(await query('ALERTS{alertstate="firing"}')).toEqual([]);
  });
});
