import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../src/log.js';
import { runDemo } from '../../src/dev/demo-command.js';

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
    expect(text).toMatch(/redis-1 .* master {3}replicas 1 {2}keys 4/);
    expect(text).toMatch(/redis-2 .* replica {2}link up {2}keys 4/);
    expect(text).toContain('sentinel sees master');
    expect(text).toContain('demo: stopped');
    // Every pid printed is gone.
    const pids = [...text.matchAll(/pid (\d+)/g)].map((m) => Number(m[1]));
    expect(pids.length).toBeGreaterThanOrEqual(3);
    for (const pid of new Set(pids)) expect(() => process.kill(pid, 0)).toThrow();
  });
});
