import { Command } from 'commander';
import { registerAccountCommand } from './admin/account-command.js';
import { registerDatasetCommand } from './admin/dataset-command.js';
import { registerReplicasCommand } from './admin/replicas-command.js';
import { registerCheckConfigCommand } from './config/command.js';
import { registerControlCommands } from './control/command.js';
import { registerEdgeCommands } from './edge/command.js';

/**
 * `credit-edge`: the production CLI, one subcommand per role. Each area of the code registers its
 * own subcommands, so this file only lists them (src/cli.ts runs it; tests run commands
 * in-process). The development kit (demo, engine, bench) is `credit-edge-dev` (src/dev/cli.ts):
 * nothing here imports it, so a production image holds the product alone.
 */
export function createProgram(name = 'credit-edge'): Command {
  const program = new Command(name)
    .description('SIP call-routing edge with credit gating over local Redis replicas')
    .showHelpAfterError()
    .enablePositionalOptions();

  registerControlCommands(program);
  registerEdgeCommands(program);
  registerCheckConfigCommand(program);
  registerAccountCommand(program);
  registerDatasetCommand(program);
  registerReplicasCommand(program);
  return program;
}
