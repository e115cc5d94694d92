import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { runDemo } from '../../src/dev/demo-command.js';
import { freePort } from '../../src/dev/ports.js';

const SEED = fileURLToPath(new URL('../../config/demo-accounts.yaml', import.meta.url));

describe('credit-edge demo', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('starts the seeded topology, prints its state and stops everything after --for', async () => {
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    await runDemo({ accounts: SEED, replicas: 1, sentinels: 1, interval: 0.5, for: 1 }, silentLogger);
    const text = written.join('');
    expect(text).toContain('seeded accounts');
    // The seeded accounts and the dataset marker.
    expect(text).toMatch(/redis-1 .* master {3}replicas 1 {2}keys 6/);
    expect(text).toMatch(/redis-2 .* replica {2}link up {2}keys 6/);
    expect(text).toContain('sentinel sees master');
    expect(text).toContain('demo: stopped');
    // Every pid printed is gone.
    const pids = [...text.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids.length).toBeGreaterThanOrEqual(3);
    for (const pid of new Set(pids)) expect(() => process.kill(pid, 0)).toThrow();
  });

  it('with the SIP side and the controller: each demo account gets its answer, and the printed commands name the port and config', async () => {
    const written: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const port = await freePort({ udp: true });
    await runDemo({ accounts: SEED, replicas: 2, sentinels: 1, interval: 30, for: 1, sip: { host: '127.0.0.1', port } }, silentLogger);
    const text = written.join('');
    expect(text).toMatch(/acct-ok +-> 200 OK, call completed/);
    expect(text).toMatch(/acct-disabled +-> 403 Account Not Enabled {2}\(Reason: Q\.850;cause=21;/);
    expect(text).toMatch(/acct-nocredit +-> 403 Out Of Call Credit {2}\(Reason: Q\.850;cause=52;/);
    expect(text).toMatch(/acct-full +-> 403 Channel Limit Reached/);
    expect(text).toMatch(/acct-missing +-> 403 Forbidden/);
    expect(text).toContain(`sipp 127.0.0.1:${port} -sf sipp/demo-call.xml -s callee -m 1 -d 2000 -key account acct-ok`);
    expect(text).toContain('credit controller running');
    expect(text).toMatch(/node dist\/src\/cli\.js account set acct-low balance=10 --config \S+credit-edge\.yaml/);
    expect(text).toContain('demo: stopped');
  }, 60_000);
});
