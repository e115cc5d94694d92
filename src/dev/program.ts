import type { Command } from 'commander';
import { registerBenchCommand } from '../../bench/command.js';
import { registerEngineCommand } from '../engine/command.js';
import { createProgram } from '../program.js';
import { registerDemoCommand } from './demo-command.js';

/**
 * `credit-edge-dev`: every production command plus the development kit: the demo, the embedded SIP
 * engine on its own, and the benchmark runner. Never in a production image (see the Dockerfile).
 */
export function createDevProgram(): Command {
  const program = createProgram('credit-edge-dev');
  program.description('credit-edge with its development kit: demo, embedded SIP engine, benchmarks');
  registerDemoCommand(program);
  registerEngineCommand(program);
  registerBenchCommand(program);
  return program;
}
