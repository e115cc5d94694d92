import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { EdgeMetrics } from '../../src/admin/metrics.js';
import { ControllerMetrics } from '../../src/control/metrics.js';
import { EDGE_NODE_FLAGS } from '../../src/edge/node-flags.js';

/**
 * The packaging files that cannot run here (no Docker engine, no Grafana) are checked by reading;
 * every metric the dashboard and the alerts name must be one the edge or the controller exports.
 * The alert rules also run in Prometheus' own tools (test/integration/alert-rules.test.ts,
 * prometheus.test.ts) and the systemd units in systemd-analyze (systemd-units.test.ts).
 */

const read = (p: string) => fs.readFileSync(p, 'utf8');

async function exportedMetricNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const registry of [new EdgeMetrics().registry, new ControllerMetrics().registry]) {
    for (const m of await registry.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
    }
  }
  return names;
}

function metricNamesIn(text: string): string[] {
  return [...new Set(text.match(/\bcredit_(?:edge|controller)_[a-z_]+/g) ?? [])];
}

describe('docker-compose.yml', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, any> };

  it('holds drachtio-server with CDRs, a Redis master, two replicas, three Sentinels, the edge and the controller', () => {
    expect(Object.keys(compose.services).sort()).toEqual(
      ['controller', 'drachtio', 'edge', 'redis-master', 'redis-replica-1', 'redis-replica-2', 'sentinel-1', 'sentinel-2', 'sentinel-3'].sort(),
    );
    expect(compose.services.drachtio.image).toMatch(/^drachtio\/drachtio-server:/);
    expect(read('deploy/drachtio/drachtio.conf.xml')).toContain('<cdrs>true</cdrs>');
    for (const r of ['redis-replica-1', 'redis-replica-2']) expect(compose.services[r].command.join(' ')).toContain('--replicaof redis-master 6379');
    for (const s of ['sentinel-1', 'sentinel-2', 'sentinel-3']) expect(compose.services[s].command.join(' ')).toContain('--sentinel');
    expect(read('deploy/redis/sentinel.conf')).toMatch(/^sentinel monitor credit-edge redis-master 6379 2$/m);
    expect(compose.services.edge.command).toEqual(['edge', '--config', '/etc/credit-edge/credit-edge.yaml']);
    expect(compose.services.controller.command[0]).toBe('controller');
  });

  it('mounts only files that exist, and gives the edge its secrets from the environment', () => {
    for (const service of Object.values(compose.services)) {
      for (const volume of (service.volumes ?? []) as string[]) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('./')) expect(fs.existsSync(source), source).toBe(true);
      }
    }
    expect(Object.keys(compose.services.edge.environment)).toEqual(['CREDIT_EDGE_SIP__SERVER__SECRET', 'CREDIT_EDGE_ADMIN__TOKEN']);
  });
});

describe('Dockerfile and systemd unit', () => {
  it('Dockerfile: multi-stage, slim Node LTS, production deps only, non-root, healthcheck on /healthz', () => {
    const text = read('Dockerfile');
    expect(text.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(3);
    expect(text).toMatch(/^FROM node:\$\{NODE_VERSION\}-bookworm-slim/m);
    expect(text).toMatch(/npm ci --omit=dev/);
    expect(text).toMatch(/^USER node$/m);
    expect(text).toMatch(/^HEALTHCHECK .*\n.*\/healthz/m);
  });

  it('systemd unit: runs `edge`, reloads with SIGHUP, checks the config first', () => {
    const text = read('deploy/systemd/credit-edge.service');
    expect(text).toMatch(/^ExecStart=.* edge --config /m);
    expect(text).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(text).toMatch(/^ExecStartPre=.* check-config /m);
    expect(text).toMatch(/^User=credit-edge$/m);
  });

  it('production starts the edge with the Node flags the benchmark measures it with', () => {
    expect(EDGE_NODE_FLAGS.length).toBeGreaterThan(0);
    expect(read('deploy/systemd/credit-edge.service')).toMatch(/^ExecStart=\/usr\/bin\/node (.*) dist\/src\/cli\.js edge /m);
    const unitFlags = /^ExecStart=\/usr\/bin\/node (.*) dist\/src\/cli\.js edge /m.exec(read('deploy/systemd/credit-edge.service'))![1]!.split(' ');
    expect(unitFlags).toEqual(EDGE_NODE_FLAGS);
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(read('Dockerfile'))![1]!) as string[];
    expect(entrypoint).toEqual(['node', ...EDGE_NODE_FLAGS, 'dist/src/cli.js']);
  });

  it('edge unit: SIGTERM drains the calls in progress, and systemd waits longer than the default drain before it kills', () => {
    const text = read('deploy/systemd/credit-edge.service');
    expect(text).toMatch(/^KillSignal=SIGTERM$/m);
    const timeoutS = Number(/^TimeoutStopSec=(\d+)$/m.exec(text)?.[1]);
    expect(timeoutS * 1000).toBeGreaterThan(parseConfig('', '(defaults)').shutdown.drain_ms);
  });

  it('controller unit: runs `controller`, checks the config first, secrets from an EnvironmentFile, reloads with SIGHUP (which the controller handles)', () => {
    const text = read('deploy/systemd/credit-edge-controller.service');
    expect(text).toMatch(/^ExecStart=.* controller --config /m);
    expect(text).toMatch(/^ExecStartPre=.* check-config /m);
    expect(text).toMatch(/^EnvironmentFile=-?\/etc\/credit-edge\/\S+\.env$/m);
    expect(text).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    expect(read('src/control/command.ts')).toContain("process.on('SIGHUP'");
  });
});

describe('Prometheus alerts and Grafana dashboard', () => {
  it('alert rules parse and cover the issue’s list', () => {
    const rules = (parse(read('deploy/prometheus/credit-edge-alerts.yml')) as { groups: { rules: { alert: string; expr: string }[] }[] }).groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'CreditEdgeCallVolumeDrop',
        'CreditEdge403RateSpike',
        'CreditEdge503Rate',
        'CreditEdgeReplicaUnhealthy',
        'CreditControllerBreakerOpen',
        'CreditControllerNotOnCurrentMaster',
      ]),
    );
  });

  it('every metric the alerts and the dashboard name is exported', async () => {
    const exported = await exportedMetricNames();
    const dashboard = read('deploy/grafana/credit-edge-dashboard.json');
    expect(() => JSON.parse(dashboard)).not.toThrow();
    for (const name of [...metricNamesIn(dashboard), ...metricNamesIn(read('deploy/prometheus/credit-edge-alerts.yml'))]) {
      expect(exported.has(name), name).toBe(true);
    }
  });
});
