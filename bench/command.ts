import { Command } from 'commander';
import { configureBenchCommand, runFromCli, type BenchRun } from './options.js';

/**
 * `credit-edge-dev bench PROFILE [options]`: the same runner as `npm run bench`. The reporting
 * libraries (devDependencies) load only when the command runs.
 */
export function registerBenchCommand(program: Command): void {
  program.addCommand(
    configureBenchCommand(new Command('bench')).action(async (profile: BenchRun, opts: Record<string, unknown>) => {
      await runFromCli(profile, opts);
      // Redis clients and timers of a finished run must not keep the CLI alive.
      process.exit(0);
    }),
  );
}
