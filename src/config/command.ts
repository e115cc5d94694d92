import type { Command } from 'commander';
import { ConfigError, loadConfig } from './load.js';

/** `credit-edge check-config FILE`: validates a config file (with env overrides) without starting anything. */

/** The problems in a config file, each `file:line: key: message`; empty when it is valid. */
export function checkConfig(file: string, env: NodeJS.ProcessEnv = process.env): string[] {
  try {
    loadConfig(file, env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

export function registerCheckConfigCommand(program: Command): void {
  program
    .command('check-config')
    .description('validate a config file (and CREDIT_EDGE_* overrides) without starting anything')
    .argument('<file>', 'the YAML config file')
    .action((file: string) => {
      const problems = checkConfig(file);
      if (problems.length === 0) {
        process.stdout.write(`${file}: ok\n`);
        return;
      }
      process.stderr.write(problems.map((p) => p + '\n').join(''));
      throw new Error(`${file}: ${problems.length} problem${problems.length > 1 ? 's' : ''}, not valid`);
    });
}
