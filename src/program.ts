import { Command } from 'commander';
import { registerAccountCommand } from './admin/account-command.js';
import { registerDatasetCommand } from './admin/dataset-command.js';
import { registerReplicasCommand } from './admin/replicas-command.js';
import { registerCheckConfigCommand } from './config/command.js';
import { registerControlCommands } from './control/command.js';
import { registerBenchCommand } from '../bench/command.js';
import { registerDemoCommand } from './dev/demo-command.js';
import { registerEdgeCommands } from './edge/command.js';
import { registerEngineCommand } from './engine/command.js';

/**
 * `credit-edge`: one binary, one subcommand per role. Each area of the code registers its own
 * subcommands, so this file only lists them (src/cli.ts runs it; tests run commands in-process).
 */
export function createProgram(): Command {
  const program = new Command('credit-edge')
    .description('SIP call-routing edge with credit gating over local Redis replicas')
    .showHelpAfterError()
    .enablePositionalOptions();

  registerDemoCommand(program);
  registerBenchCommand(program);
  registerEngineCommand(program);
  registerControlCommands(program);
  registerEdgeCommands(program);
  registerCheckConfigCommand(program);
  registerAccountCommand(program);
  registerDatasetCommand(program);
  registerReplicasCommand(program);
  return program;
}
