import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';

/**
 * The alert rules, tested by Prometheus' own tool: `promtool check rules` (syntax, PromQL) and
 * `promtool test rules` on deploy/prometheus/credit-edge-alerts.test.yml (each alert evaluated over
 * series written for it). scripts/setup.sh installs promtool (Debian package prometheus).
 */

const RULES = 'deploy/prometheus/credit-edge-alerts.yml';
const TESTS = 'deploy/prometheus/credit-edge-alerts.test.yml';

function promtool(args: string[]) {
  const found = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error('promtool is not installed: run scripts/setup.sh (Debian package prometheus)');
  return spawnSync(found, args, { encoding: 'utf8', timeout: 120_000 });
}

interface RuleTests {
  rule_files: string[];
  tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}

describe('alert rules, by promtool', () => {
  it('promtool check rules: the file is valid', () => {
    const result = promtool(['check', 'rules', RULES]);
    expect(result.stdout + result.stderr).toMatch(/SUCCESS: \d+ rules found/);
    expect(result.status).toBe(0);
  });

  it('promtool test rules: every case passes', () => {
    const result = promtool(['test', 'rules', TESTS]);
    expect(result.stdout + result.stderr).toContain('SUCCESS');
    expect(result.status, result.stdout + result.stderr).toBe(0);
  });

  it('every alert rule has a case where it fires and one where it must not', () => {
    const alerts = (parse(fs.readFileSync(RULES, 'utf8')) as { groups: { rules: { alert?: string }[] }[] }).groups.flatMap((g) => g.rules.flatMap((r) => (r.alert ? [r.alert] : [])));
    const tests = parse(fs.readFileSync(TESTS, 'utf8')) as RuleTests;
    expect(tests.rule_files).toEqual(['credit-edge-alerts.yml']);
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(mine.some((c) => (c.exp_alerts ?? []).length > 0), `${alert} fires in some case`).toBe(true);
      expect(mine.some((c) => (c.exp_alerts ?? []).length === 0), `${alert} stays quiet in some case`).toBe(true);
    }
    expect(alerts.length).toBeGreaterThanOrEqual(7);
  });

  it('every alert says what it means and links its runbook entry in docs/operations.md', () => {
    type Rule = { alert?: string; annotations?: Record<string, string> };
    const rules = (parse(fs.readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules.filter((r) => r.alert));
    // GitHub's anchor of a heading: lower case, spaces to dashes, other punctuation dropped.
    const anchors = new Set(
      [...fs.readFileSync('docs/operations.md', 'utf8').matchAll(/^#{2,4} (.+)$/gm)].map((m) => m[1]!.toLowerCase().replace(/[^\w\s-]/g, '').replace(/\s/g, '-')),
    );
    for (const rule of rules) {
      const a = rule.annotations ?? {};
      expect(a.summary, `${rule.alert} summary`).toBeTruthy();
      expect(a.description, `${rule.alert} description`).toBeTruthy();
      expect(a.runbook_url, `${rule.alert} runbook_url`).toBe(`docs/operations.md#${rule.alert!.toLowerCase()}`);
      expect(anchors.has(rule.alert!.toLowerCase()), `docs/operations.md has a heading for ${rule.alert}`).toBe(true);
    }
  });

  it('a wrong expectation fails (the check can fail)', () => {
    // The breaker open for 5 minutes, and a case claiming it stays quiet.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'credit-edge-promtool-'));
    const file = path.join(dir, 'wrong.test.yml');
    fs.writeFileSync(
      file,
      stringify({
        rule_files: [path.resolve(RULES)],
        tests: [
          {
            interval: '1m',
            input_series: [{ series: 'credit_controller_breaker_open{instance="controller-1"}', values: '1x5' }],
            alert_rule_test: [{ eval_time: '3m', alertname: 'CreditControllerBreakerOpen', exp_alerts: [] }],
          },
        ],
      }),
    );
    try {
      const result = promtool(['test', 'rules', file]);
      expect(result.stdout + result.stderr).toContain('alertname: CreditControllerBreakerOpen');
      expect(result.status).not.toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
