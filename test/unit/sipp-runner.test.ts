import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { packageRoot, parseRtt, prepareScenario, scenarioPath, sippArgs } from '../../src/dev/sipp.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = mkdtempSync(path.join(tmpdir(), 'sipp-runner-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('SIPp runner (src/dev/sipp.ts)', () => {
  it('finds the project root by walking up to package.json, from src/dev and from dist/src/dev alike', () => {
    expect(packageRoot()).toBe(ROOT);
    expect(packageRoot(path.join(ROOT, 'dist', 'src', 'dev'))).toBe(ROOT);
    expect(scenarioPath('uac-auth')).toBe(path.join(ROOT, 'sipp', 'uac-auth.xml'));
    expect(scenarioPath('/elsewhere/x.xml')).toBe('/elsewhere/x.xml');
  });

  it('fills {{VARS}}, drops a line whose only content is an empty var, and refuses missing vars', () => {
    const src = path.join(dir, 'in.xml');
    writeFileSync(src, '<a>\n      X: {{A}}\n      {{EXTRA}}\n      Y: 1\n</a>\n');
    const out = (vars: Record<string, string>) => {
      const sub = mkdtempSync(path.join(dir, 'o-'));
      return readFileSync(prepareScenario(src, vars, sub), 'utf8');
    };
    expect(out({ A: '7', EXTRA: '' })).toBe('<a>\n      X: 7\n      Y: 1\n</a>\n');
    expect(out({ A: '7', EXTRA: 'H: v' })).toBe('<a>\n      X: 7\n      H: v\n      Y: 1\n</a>\n');
    expect(() => out({ EXTRA: '' })).toThrow(/needs vars: A/);
  });

  it('every scenario in sipp/ prepares with the runner defaults plus its documented vars', () => {
    mkdirSync(path.join(dir, 'all'), { recursive: true });
    for (const [name, vars] of [['uac-auth', { FINAL: '200' }], ['uac-expect-final', { CODE: '403' }], ['uas-answer', {}], ['uac-call', {}]] as const) {
      expect(() => prepareScenario(name, { TIMEWAIT: '500', EXTRA_HEADERS: '', ...vars }, path.join(dir, 'all'))).not.toThrow();
    }
  });

  it('parses SIPp 3.6 -trace_rtt files', () => {
    expect(parseRtt('Date_ms;response_time_ms;rtd_no\n108.001;4;pdd\n204.001;0;pdd\n')).toEqual([
      { atMs: 108.001, ms: 4, rtd: 'pdd' },
      { atMs: 204.001, ms: 0, rtd: 'pdd' },
    ]);
    expect(parseRtt('')).toEqual([]);
  });

  it('builds the command line: unbounded runs have no -m/-timeout, auth and keys map to -au/-ap/-key', () => {
    const files = { scenario: 's.xml', port: 5070, mediaPort: 6000, messages: 'm.log', stats: 's.csv' };
    const bounded = sippArgs({ scenario: 'x', remote: '127.0.0.1:5060', auth: { username: 'u', password: 'p' }, keys: { k: 'v' } }, files);
    expect(bounded.join(' ')).toContain('-m 1 -timeout 20s -timeout_error');
    expect(bounded.join(' ')).toContain('-au u -ap p -key k v');
    expect(bounded).toContain('-trace_msg');
    const demoUas = sippArgs({ scenario: 'uas-answer', calls: 0, timeoutMs: 0, traceMessages: false }, files);
    expect(demoUas).not.toContain('-m');
    expect(demoUas).not.toContain('-timeout');
    expect(demoUas).not.toContain('-trace_msg');
    expect(demoUas).not.toContain('-r');
  });
});
