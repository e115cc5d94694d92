import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseChange, validateChange } from '../../src/admin/account-command.js';
import { checkConfig } from '../../src/config/command.js';
import { parseConfig } from '../../src/config/load.js';
import { isLoopback } from '../../src/config/schema.js';
import { changedKeys, withRunningValues } from '../../src/config/reload.js';
import { reconfigureController, type RunningController } from '../../src/control/start.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credit-edge-check-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

describe('credit-edge check-config', () => {
  it('passes the annotated example and the compose config (token from the environment)', () => {
    expect(checkConfig('config/credit-edge.example.yaml', {})).toEqual([]);
    expect(checkConfig('deploy/compose/credit-edge.yaml', { CREDIT_EDGE_ADMIN__TOKEN: 'x'.repeat(16) })).toEqual([]);
  });

  it('names file:line: key: message for each problem in a broken file', () => {
    const broken = file(
      'broken.yaml',
      [
        'node_id: edge 1', // 1: bad name
        'redis:',
        '  replicas: []', // 3: at least one
        'lookup:',
        '  hedge_delay_ms: -3', // 5: positive
        'identify:',
        '  order: [source, telepathy]', // 7: not an identification method
        'admin:',
        '  listen: 0.0.0.0:8080', // 9: beyond loopback without token
        '  tokn: abc', // 10: unknown key
      ].join('\n'),
    );
    const problems = checkConfig(broken, {});
    expect(problems).toHaveLength(6);
    for (const [line, key] of [
      [1, 'node_id'],
      [3, 'redis.replicas'],
      [5, 'lookup.hedge_delay_ms'],
      [7, 'identify.order.1'],
      [10, 'admin.tokn'],
      [9, 'admin.listen'],
    ] as const) {
      expect(problems, `${line} ${key}`).toContainEqual(expect.stringMatching(new RegExp(`^${broken}:${line}: ${key.replace(/\./g, '\\.')}: \\S`)));
    }
  });

  it('names the line of a YAML syntax error, and the variable of a bad override', () => {
    expect(checkConfig(file('syntax.yaml', 'routes:\n  default: [sip:a:5060\n'), {})[0]).toMatch(new RegExp(`^${dir}/syntax\\.yaml:\\d+: `));
    expect(checkConfig(file('ok.yaml', ''), { CREDIT_EDGE_CACHE__MAX_STALE_MS: 'forever' })).toEqual([
      expect.stringMatching(/^env CREDIT_EDGE_CACHE__MAX_STALE_MS: cache\.max_stale_ms: /),
    ]);
  });

  it('says when the file cannot be read', () => {
    expect(checkConfig(path.join(dir, 'absent.yaml'), {})[0]).toMatch(/absent\.yaml: cannot read/);
  });

  it('knows loopback addresses', () => {
    expect(['127.0.0.1:8080', '127.1.2.3:1', 'localhost:80'].map(isLoopback)).toEqual([true, true, true]);
    expect(['0.0.0.0:8080', '10.0.0.1:8080', 'admin.example:80'].map(isLoopback)).toEqual([false, false, false]);
  });
});

describe('reload: what changed, and what needs a restart', () => {
  const base = parseConfig('routes:\n  default: [sip:a.example:5060]\n', 'a.yaml');

  it('lists changed keys two levels deep; routes and responses as a whole', () => {
    const next = parseConfig('routes:\n  default: [sip:b.example:5060]\n  gold: [sip:c.example]\nlookup:\n  hedge_delay_ms: 5\nsip:\n  server:\n    port: 9023\n', 'b.yaml');
    expect(changedKeys(base, next).sort()).toEqual(['lookup.hedge_delay_ms', 'routes', 'sip.server']);
    expect(changedKeys(base, base)).toEqual([]);
  });

  it('keeps the running value of keys that need a restart', () => {
    const next = parseConfig('sip:\n  server:\n    port: 9023\ncache:\n  max_entries: 5\n  max_stale_ms: 1000\n', 'b.yaml');
    const kept = withRunningValues(next, base, ['sip.server', 'cache.max_entries']);
    expect(kept.sip.server.port).toBe(9022);
    expect(kept.cache).toEqual({ max_entries: 100_000, max_stale_ms: 1000 });
  });
});

describe("the controller's reload: cut_calls in place, its other keys at a restart, the edge's keys not its business", () => {
  it('applies controller.cut_calls live and hands it to the running controller', () => {
    const base = parseConfig('', 'a.yaml');
    const next = parseConfig('controller:\n  cut_calls:\n    enabled: false\nredis:\n  password: s3cret\nroutes:\n  default: [sip:b.example]\n', 'b.yaml');
    const given: unknown[] = [];
    const running = { controller: { setCutCalls: (c: unknown) => given.push(c) } } as unknown as RunningController;
    expect(reconfigureController(running, base, next)).toEqual({ applied: ['controller.cut_calls'], needsRestart: ['redis.password'] });
    expect(given).toEqual([{ enabled: false, dryRun: false, graceMs: 250 }]);
    expect(reconfigureController(running, base, base)).toEqual({ applied: [], needsRestart: [] });
    expect(given).toHaveLength(1);
  });
});

describe('credit-edge account set: values checked with the edge’s own parser', () => {
  it('accepts what parseAccount accepts', () => {
    const change = parseChange(['balance=12.50', 'max_channels=4'], ['rate']);
    expect(validateChange('acct-1', { enabled: '1', rate: '0.01' }, change)).toEqual({ enabled: '1', balance: '12.50', max_channels: '4' });
  });

  it.each([
    [['balance=ten'], /field balance has a bad value "ten"/],
    [['enabled=yes'], /field enabled has a bad value "yes"/],
    [['max_channels=-1'], /field max_channels has a bad value/],
    [['route=no route'], /field route has a bad value/],
    [['rate=-0.5'], /field rate has a bad value/],
  ])('refuses %j', (assignments, message) => {
    expect(() => validateChange('acct-1', { enabled: '1' }, parseChange(assignments, []))).toThrow(message);
  });

  it('refuses unknown fields, credit_blocked (block/unblock record a reason), and removing enabled', () => {
    expect(() => parseChange(['balanse=1'], [])).toThrow(/unknown field balanse/);
    expect(() => parseChange(['credit_blocked=0'], [])).toThrow(/account unblock/);
    expect(() => parseChange([], ['enabled'])).toThrow(/--unset enabled/);
    expect(() => parseChange([], [])).toThrow(/nothing to change/);
  });
});
