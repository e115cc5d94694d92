import { vi } from 'vitest';
import { createProgram } from '../../src/program.js';

/** Runs one operator command in-process; resolves with what it printed, rejects with its one-line cause. */
export async function cli(args: string[]): Promise<{ out: string; err: string }> {
  const program = createProgram().exitOverride();
  let out = '';
  let err = '';
  const so = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
  const se = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
  try {
    await program.parseAsync(['node', 'credit-edge', ...args]);
    return { out, err };
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
}
