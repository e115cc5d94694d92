#!/usr/bin/env node
import { Command } from 'commander';
import { configureBenchCommand, runFromCli, type BenchRun } from './options.js';

/**
 * `npm run bench -- PROFILE [options]` (node dist/bench/run.js): runs one benchmark profile. Progress
 * goes to stderr; the last line of stdout is the run's summary as one JSON object.
 */
const program = configureBenchCommand(new Command('bench')).action(async (profile: BenchRun, opts: Record<string, unknown>) => {
  await runFromCli(profile, opts);
});

program
  .parseAsync(process.argv)
  .then(() => process.exit(0))
  .catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
