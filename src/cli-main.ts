import type { Command } from 'commander';

/** Runs a CLI program on the process's arguments: a failure is one line on stderr and exit 1. */
export function runCli(program: Command): void {
  program.parseAsync(process.argv).catch((err: unknown) => {
    process.stderr.write(`${program.name()}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
