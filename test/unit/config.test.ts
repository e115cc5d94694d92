import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, 'edge.yaml', env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected the config to be refused');
}

describe('the config file', () => {
  it('the annotated example is valid and holds what it says', () => {
    const { config } = loadConfig('config/credit-edge.example.yaml', {});
    expect(config.redis.replicas).toHaveLength(2);
    expect(config.routes.default).toEqual(['sip:127.0.0.1:5080']);
    expect(config.responses['out-of-credit']).toEqual({ status: 403, phrase: 'Out Of Call Credit', q850: 52 });
  });

  it('an empty file means the embedded defaults', () => {
    const config = parseConfig('', 'edge.yaml');
    expect(config.lookup).toEqual({ hedge_delay_ms: 3, replica_timeout_ms: 10, probe_interval_ms: 250, probe_timeout_ms: 250, connect_timeout_ms: 1000 });
    expect(config.cache.max_stale_ms).toBe(300_000);
    expect(config.identify.order).toEqual(['source', 'header']);
  });

  it('names the file, the line and the key of each problem', () => {
    const text = ['node_id: edge-7', 'lookup:', '  hedge_delay_ms: fast', '  replica_timeot_ms: 5', 'routes:', '  default: [carrier.example]'].join('\n');
    expect(problems(text)).toEqual([
      expect.stringMatching(/^edge\.yaml:3: lookup\.hedge_delay_ms: .*expected number/),
      'edge.yaml:4: lookup.replica_timeot_ms: unknown key',
      expect.stringMatching(/^edge\.yaml:6: routes\.default\.0: expected a SIP URI/),
    ]);
  });

  it('names the line of a YAML syntax error', () => {
    expect(problems('lookup:\n  hedge_delay_ms: [1,\n')[0]).toMatch(/^edge\.yaml:\d+: /);
  });

  it('refuses a duplicate key rather than keeping one silently', () => {
    expect(problems('node_id: a\nnode_id: b\n')[0]).toMatch(/^edge\.yaml:2: /);
  });

  it('lets the environment override single keys, and names the variable when its value is bad', () => {
    const config = parseConfig('lookup:\n  hedge_delay_ms: 3\n', 'edge.yaml', {
      CREDIT_EDGE_LOOKUP__HEDGE_DELAY_MS: '7',
      CREDIT_EDGE_ADMIN__LISTEN: '0.0.0.0:9000',
      CREDIT_EDGE_ADMIN__TOKEN: 'a-token-of-16-chars-or-more',
    });
    expect(config.lookup.hedge_delay_ms).toBe(7);
    expect(config.admin.listen).toBe('0.0.0.0:9000');
    expect(problems('', { CREDIT_EDGE_OVERLOAD__MAX_IN_FLIGHT: 'lots' })).toEqual([expect.stringMatching(/^env CREDIT_EDGE_OVERLOAD__MAX_IN_FLIGHT: overload\.max_in_flight: /)]);
  });

  it('says which file it cannot read', () => {
    expect(() => loadConfig('config/no-such-file.yaml', {})).toThrow(/config\/no-such-file\.yaml: cannot read/);
  });
});

describe('production mode (NODE_ENV=production, as the image and the systemd units set it)', () => {
  const production = { NODE_ENV: 'production' };
  const ready = ['sip:', '  server: { host: 10.0.0.5, secret: s3cret-of-ours }', '  embedded_engine: { enabled: false }'].join('\n');

  it('refuses the embedded engine and the well-known secret left at their defaults, naming each key', () => {
    expect(problems('node_id: edge-1', production)).toEqual([
      expect.stringMatching(/^edge\.yaml: sip\.embedded_engine\.enabled \(not set: the default\): the embedded SIP engine is for development/),
      expect.stringMatching(/^edge\.yaml: sip\.server\.secret \(not set: the default\): the well-known default secret "cymru" is refused/),
    ]);
  });

  it('refuses them written in the file, at their lines, and names the variable that set one', () => {
    const text = ['sip:', '  server:', '    secret: cymru', '  embedded_engine:', '    enabled: true'].join('\n');
    expect(problems(text, production)).toEqual([expect.stringMatching(/^edge\.yaml:5: sip\.embedded_engine\.enabled: /), expect.stringMatching(/^edge\.yaml:3: sip\.server\.secret: /)]);
    expect(problems(ready, { ...production, CREDIT_EDGE_SIP__SERVER__SECRET: 'cymru' })).toEqual([expect.stringMatching(/^env CREDIT_EDGE_SIP__SERVER__SECRET: sip\.server\.secret: /)]);
  });

  it('accepts a config that names its SIP server and secret, from the file or the environment', () => {
    expect(parseConfig(ready, 'edge.yaml', production).sip.server.secret).toBe('s3cret-of-ours');
    const fromEnv = { ...production, CREDIT_EDGE_SIP__SERVER__SECRET: 'from-env', CREDIT_EDGE_SIP__EMBEDDED_ENGINE__ENABLED: 'false' };
    expect(loadConfig('config/credit-edge.example.yaml', fromEnv).config.sip.server.secret).toBe('from-env');
  });

  it('keeps the conveniences of development and tests', () => {
    expect(parseConfig('', 'edge.yaml', { NODE_ENV: 'development' }).sip.embedded_engine.enabled).toBe(true);
    expect(parseConfig('', 'edge.yaml', {}).sip.server.secret).toBe('cymru');
  });
});
