#!/usr/bin/env node
import { Command } from 'commander';
import { configureBenchCommand, runFromCli } from './options.js';
import type { ProfileName } from './profiles.js';

/**
 * `npm run bench -- PROFILE [options]` (node dist/bench/run.js): runs one benchmark profile. Progress
 * goes to stderr; the last line of stdout is the run's summary as one JSON object.
 */
const program = configureBenchCommand(new Command('bench')).action(async (profile: ProfileName | 'controller-scale' | 'cut-overdraft' | 'soak', opts: Record<string, unknown>) => {
  await runFromCli(profile, opts);
});

program
  .parseAsync(process.argv)
  .then(() => process.exit(0))
  .catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
