import { describe, expect, it } from 'vitest';
import { formatAnswers, formatStatus, formatTryNext, type DemoPlaces } from '../../src/dev/demo-screen.js';
import type { TopologyDescription } from '../../src/dev/topology.js';

/** The demo's console text, from what the demo knows (the running demo: test/integration/demo-command.test.ts). */

const places: DemoPlaces = {
  runDir: '/tmp/run',
  configFile: '/tmp/run/credit-edge.yaml',
  logFile: '/tmp/run/demo.log',
  pid: 4242,
  redis: { masterName: 'credit-edge', master: 7000, replicas: [7001, 7002], sentinels: [7100] },
  sip: { target: '127.0.0.1:5060', carrierPort: 5080, edgeAdmin: 'http://127.0.0.1:8080', controllerAdmin: 'http://127.0.0.1:8081', scenario: 'sipp/demo-call.xml' },
};

const topology = (over: Partial<TopologyDescription> = {}): TopologyDescription => ({
  masterName: 'credit-edge',
  master: { host: '127.0.0.1', port: 7000 },
  nodes: [
    { name: 'redis-1', host: '127.0.0.1', port: 7000, pid: 1, state: 'running', role: 'master', keys: 6 },
    { name: 'redis-2', host: '127.0.0.1', port: 7001, pid: 2, state: 'running', role: 'replica', linkStatus: 'up', syncInProgress: false },
    { name: 'redis-3', host: '127.0.0.1', port: 7002, pid: 3, state: 'running', role: 'replica', linkStatus: 'down', syncInProgress: true },
  ],
  sentinels: [{ name: 'sentinel-1', host: '127.0.0.1', port: 7100, pid: 4, master: { host: '127.0.0.1', port: 7001 } }],
  ...over,
});

describe('demo screen', () => {
  it('status: one line per part, trouble in capitals, sentinels that see another master counted out', () => {
    const text = formatStatus({
      at: new Date(2026, 0, 1, 12, 30, 5),
      intervalS: 5,
      topology: topology(),
      edge: { ready: false, replicasInSync: 1, replicas: 2, calls: 3, decisions: 9, cached: 4 },
      controller: 'standby on no master',
    });
    expect(text.split('\n')).toEqual([
      'status 12:30:05 (every 5 s)',
      '  redis       master :7000 up, keys 6 | replicas :7001 link up, :7002 SYNCING | sentinels 0/1 see :7000',
      '  edge        NOT READY | replicas in sync 1/2 | calls in progress 3 | decisions 9 | cached accounts 4',
      '  controller  standby on no master',
    ]);
  });

  it('status: a frozen or unanswering node says so', () => {
    const t = topology();
    t.nodes[1] = { ...t.nodes[1]!, state: 'frozen' };
    t.nodes[2] = { ...t.nodes[2]!, error: 'timeout' };
    expect(formatStatus({ at: new Date(), intervalS: 5, topology: t })).toContain('replicas :7001 FROZEN, :7002 NOT ANSWERING');
  });

  it('answers: one row per account, the Reason header, an unexpected answer flagged', () => {
    const text = formatAnswers([
      { account: 'acct-ok', expect: '200 OK', answer: '200 OK', completed: true, asExpected: true },
      { account: 'acct-disabled', expect: '403 Account Not Enabled', answer: '503 Service Unavailable', reason: 'Q.850;cause=41', completed: false, asExpected: false },
    ]);
    expect(text).toContain('  acct-ok        200 OK, call completed   -');
    expect(text).toContain('  acct-disabled  503 Service Unavailable  Q.850;cause=41   UNEXPECTED (expected 403 Account Not Enabled)');
  });

  it('commands to try: the credit-edge form, each with the demo config', () => {
    const lines = formatTryNext(places).split('\n').filter((l) => l.startsWith('  credit-edge '));
    expect(lines.length).toBe(5);
    for (const line of lines) expect(line).toContain('--config /tmp/run/credit-edge.yaml');
    const redisOnly = formatTryNext({ ...places, sip: undefined });
    expect(redisOnly).not.toContain('sipp');
    expect(redisOnly).toContain('credit-edge account show acct-ok --config /tmp/run/credit-edge.yaml');
  });
});
