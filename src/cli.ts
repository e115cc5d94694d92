#!/usr/bin/env node
import { Command } from 'commander';
import { registerDemoCommand } from './dev/demo-command.js';
import { registerEngineCommand } from './engine/command.js';

/**
 * `credit-edge`: one binary, one subcommand per role. Each area of the code registers its own
 * subcommands, so this file only lists them.
 */
const program = new Command('credit-edge')
  .description('SIP call-routing edge with credit gating over local Redis replicas')
  .showHelpAfterError()
  .enablePositionalOptions();

registerDemoCommand(program);
registerEngineCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`credit-edge: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
