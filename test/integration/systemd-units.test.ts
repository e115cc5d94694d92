import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The systemd units, checked by systemd's own reader: `systemd-analyze verify` parses each unit as
 * systemd would load it (unknown keys, bad values, missing executables). It prints problems as
 * warnings with exit status 0, so a unit passes only with exit 0 and nothing said. scripts/setup.sh
 * installs systemd-analyze (Debian package systemd); it works without systemd running.
 */

const UNITS = ['deploy/systemd/credit-edge.service', 'deploy/systemd/credit-edge-controller.service'];
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'credit-edge-units-'));
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function analyze(): string {
  const found = spawnSync('sh', ['-c', 'command -v systemd-analyze'], { encoding: 'utf8' }).stdout.trim();
  if (!found) throw new Error('systemd-analyze is not installed: run scripts/setup.sh (Debian package systemd)');
  return found;
}

/** The unit as installed on a host whose node is where this test's node is (the units say /usr/bin/node). */
function asInstalledHere(unit: string): string {
  const copy = path.join(work, path.basename(unit));
  fs.writeFileSync(copy, fs.readFileSync(unit, 'utf8').replaceAll('/usr/bin/node ', `${process.execPath} `));
  return copy;
}

describe('systemd units', () => {
  for (const unit of UNITS) {
    it(`systemd-analyze verify ${path.basename(unit)}: no problem`, () => {
      const result = spawnSync(analyze(), ['verify', asInstalledHere(unit)], { encoding: 'utf8', timeout: 30_000 });
      expect(result.stderr + result.stdout).toBe('');
      expect(result.status).toBe(0);
    });
  }

  it('catches a broken unit (the check can fail)', () => {
    const broken = path.join(work, 'broken.service');
    fs.writeFileSync(broken, '[Unit]\nDescription=broken\n[Service]\nType=simpl\nExecStart=/bin/true\nExecReloadd=/bin/kill -HUP $MAINPID\n');
    const result = spawnSync(analyze(), ['verify', broken], { encoding: 'utf8', timeout: 30_000 });
    expect(result.stderr).toContain("Unknown key 'ExecReloadd'");
    expect(result.stderr).toContain('Failed to parse service type');
  });
});
